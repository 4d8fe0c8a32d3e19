// `cphone adb connect DEVICE`: a local TCP port on 127.0.0.1 that Debian's `adb connect
// 127.0.0.1:PORT` (or any ADB client) reaches, whose bytes go to the phone's adbd through the
// agent that runs it. Each local connection gets a WebSocket to the agent's tunnel endpoint, with a
// token from DeviceService.CreateAdbTunnel; one token serves every connection until shortly before
// it expires, then a new one is asked for. The control plane is asked once per token, never per
// byte: the bytes go straight to the host agent.
import { createServer, type Server, type Socket } from 'node:net';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { type Client, createClient, type Transport } from '@connectrpc/connect';
// The bridge alone (not the agent's index): the CLI bundle must not pull in the agent.
import { bridgeWebSocket } from '@cphone/host-agent/adb-tunnel/bridge';
import { type AdbTunnel, DeviceService } from '@cphone/proto/api';
import WebSocket from 'ws';

export interface OpenAdbTunnelOptions {
  /** The public API (with the caller's API key); or pass `devices`. */
  readonly transport?: Transport;
  /** A DeviceService client, instead of `transport`. */
  readonly devices?: Pick<Client<typeof DeviceService>, 'createAdbTunnel'>;
  readonly deviceId: string;
  /** Local port on 127.0.0.1; default 0 (the system picks one: read `port`). */
  readonly port?: number;
  /** PEM CA that signed the agent's endpoint certificate (wss); default: the system's roots. */
  readonly ca?: string | Buffer;
  /** Token lifetime asked for, seconds (CreateAdbTunnel's ttl_seconds); default 600. */
  readonly ttlSeconds?: number;
  /** A token this close to its expiry is replaced before a new connection uses it; default 30 s. */
  readonly renewBeforeMs?: number;
  /** A local connection that could not be carried (refused token, agent unreachable …). */
  onError?(error: Error): void;
}

export interface LocalAdbTunnel {
  /** The local port. */
  readonly port: number;
  /** `127.0.0.1:<port>`, what `adb connect` takes. */
  readonly address: string;
  /** Local connections carried now. */
  readonly connections: number;
  /** Stops listening and ends every connection. */
  close(): Promise<void>;
}

/** The WebSocket's options: no compression, binary only, and no masking (see below). */
function socketOptions(token: string, ca: OpenAdbTunnelOptions['ca']): WebSocket.ClientOptions {
  return {
    headers: { authorization: `Bearer ${token}` },
    perMessageDeflate: false,
    skipUTF8Validation: true,
    // Masking stops a browser's scripts from steering what proxies cache; this client is no
    // browser, and an all-zero mask lets ws send each chunk as is instead of copying it to XOR.
    generateMask: (mask: Buffer) => mask.fill(0),
    ...(ca !== undefined ? { ca } : {}),
  };
}

export async function openAdbTunnel(options: OpenAdbTunnelOptions): Promise<LocalAdbTunnel> {
  const { deviceId, port = 0, ca, ttlSeconds = 600, renewBeforeMs = 30_000 } = options;
  const devices =
    options.devices ?? (options.transport ? createClient(DeviceService, options.transport) : undefined);
  if (!devices) throw new Error('openAdbTunnel needs a transport or a DeviceService client');

  let grant: Promise<AdbTunnel> | undefined;
  const fresh = async (): Promise<AdbTunnel> => {
    const { adbTunnel } = await devices.createAdbTunnel({ deviceId, ttlSeconds });
    if (!adbTunnel) throw new Error('CreateAdbTunnel returned no tunnel');
    return adbTunnel;
  };
  /** The token in force, or a new one when it is near its expiry (or the last request failed). */
  const current = async (): Promise<AdbTunnel> => {
    let renewed = false;
    for (;;) {
      grant ??= fresh();
      const pending = grant;
      const held = await pending.catch(() => undefined);
      // Another connection replaced it meanwhile: use that one.
      if (grant !== pending) continue;
      if (held === undefined) {
        grant = undefined;
        return pending;
      }
      const expires = held.expireTime ? timestampDate(held.expireTime).getTime() : 0;
      if (renewed || expires - Date.now() > renewBeforeMs) return held;
      grant = fresh();
      renewed = true;
    }
  };
  // The first token is asked for now: a wrong device or a missing right fails here, not at `adb connect`.
  grant = fresh();
  await grant;

  const open = new Set<{ local: Socket; ws?: WebSocket }>();
  const fail = (error: Error) => options.onError?.(error);

  const carry = (local: Socket) => {
    const entry: { local: Socket; ws?: WebSocket } = { local };
    open.add(entry);
    local.pause();
    local.once('close', () => open.delete(entry));
    local.on('error', () => undefined);
    current().then(
      (tunnel) => {
        if (local.destroyed) return;
        const ws = new WebSocket(tunnel.url, socketOptions(tunnel.token, ca));
        entry.ws = ws;
        ws.once('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (d: Buffer) => {
            body += d;
          });
          res.on('end', () => {
            fail(new Error(`the agent refused the tunnel (HTTP ${res.statusCode}): ${body.trim()}`));
            local.destroy();
          });
        });
        ws.once('error', (error) => {
          if (ws.readyState !== WebSocket.OPEN) {
            fail(error);
            local.destroy();
          }
        });
        ws.once('open', () => {
          bridgeWebSocket(ws, local, {
            onEnd: (side, error) => {
              if (side === 'socket') {
                if (ws.readyState === WebSocket.OPEN) ws.close(1000);
                else ws.terminate();
              } else {
                if (error) fail(error);
                // What the phone sent is written before adb sees the end.
                local.end();
              }
            },
          });
          local.resume();
        });
      },
      (error: unknown) => {
        fail(error instanceof Error ? error : new Error(String(error)));
        local.destroy();
      },
    );
  };

  const server: Server = createServer({ noDelay: true }, carry);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  return {
    port: bound,
    address: `127.0.0.1:${bound}`,
    get connections() {
      return open.size;
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const { local, ws } of open) {
        ws?.terminate();
        local.destroy();
      }
      await closed;
    },
  };
}
