// The agent's ADB tunnel endpoint: `GET /adb` upgraded to a WebSocket on the public stream endpoint.
// The client presents an ADB tunnel token (Authorization: Bearer, or ?token=); it is checked here,
// locally (StreamAuth: the control plane's keys, this host, not revoked), the phone it names must run
// on this host, and only then is the agent's TCP connection to the phone's adbd opened and the
// upgrade completed, so a refused client gets a plain HTTP status saying why. From then on each
// binary message is a piece of adb's byte stream, carried as is both ways with backpressure
// (bridge.ts), so a slow adb client or phone never makes the agent buffer without limit. A phone that stops, a
// revocation of its device or tenant, and the agent stopping end the connections at once.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { type AdbTunnelTokenClaims, agentv1, StreamTokenError } from '@cphone/proto';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { type WebSocket, WebSocketServer } from 'ws';
import type { AdbEndpoint } from '../adb/index.js';
import { bridgeWebSocket } from './bridge.js';
import { type AdbTunnelMetrics, createAdbTunnelMetrics } from './metrics.js';

export type AdbTunnelReportInit = MessageInitShape<typeof agentv1.AdbTunnelReportSchema>;

/** What the tunnels read of the agent's phones (the reconciler). */
export interface TunnelPhones {
  observed(deviceId: string): agentv1.ObservedDevice | undefined;
  adbEndpoint(deviceId: string): AdbEndpoint | undefined;
}

export interface AdbTunnelsOptions {
  /** Checks a token (StreamAuth.verifyAdbTunnel); throws StreamTokenError with the reason. */
  verify(token: string): Promise<AdbTunnelTokenClaims>;
  readonly phones: TunnelPhones;
  /** Each connection's open and end, for the control plane's audit trail. */
  report(report: AdbTunnelReportInit): void;
  readonly registry: Registry;
  readonly logger: Logger;
  /** How long the TCP connect to a phone's adbd may take, ms (default 5000). */
  readonly connectTimeoutMs?: number;
  /** WebSocket bytes queued towards the client before the phone's socket is paused (default 1 MiB). */
  readonly sendHighWaterMark?: number;
  /** Wall clock, ms (tests). */
  readonly now?: () => number;
}

/** What a revocation or a stopped phone ends. */
export interface TunnelMatch {
  readonly sessionId?: string;
  readonly deviceId?: string;
  readonly tenantId?: string;
}

/** Largest WebSocket message accepted from a client: adb writes at most 1 MiB payloads plus headers. */
const MAX_MESSAGE_BYTES = 2 << 20;

interface Connection {
  readonly id: string;
  readonly claims: AdbTunnelTokenClaims;
  readonly ws: WebSocket;
  readonly tcp: Socket;
  readonly openedAt: number;
  readonly clientAddress: string;
  ended: boolean;
}

/** The token of an upgrade request: `Authorization: Bearer <token>`, else the `token` query parameter. */
export function tunnelTokenOf(req: IncomingMessage): string {
  const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
  return bearer ?? new URL(req.url ?? '/', 'http://agent').searchParams.get('token') ?? '';
}

function refuse(socket: Duplex, status: number, text: string, message: string): void {
  const body = `${message}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export class AdbTunnels {
  readonly #o: AdbTunnelsOptions;
  readonly #log: Logger;
  readonly #metrics: AdbTunnelMetrics;
  readonly #wss = new WebSocketServer({
    noServer: true,
    // adb's bytes are mostly already compressed or tiny; deflate would cost CPU and latency.
    perMessageDeflate: false,
    maxPayload: MAX_MESSAGE_BYTES,
    // Binary only: nothing to validate.
    skipUTF8Validation: true,
  });
  readonly #open = new Set<Connection>();
  readonly #now: () => number;
  readonly #highWaterMark: number;
  #closed = false;

  constructor(options: AdbTunnelsOptions) {
    this.#o = options;
    this.#log = options.logger.child({ module: 'adb-tunnel' });
    this.#metrics = createAdbTunnelMetrics(options.registry);
    this.#now = options.now ?? Date.now;
    this.#highWaterMark = options.sendHighWaterMark ?? 1 << 20;
  }

  /** Connections open now. */
  get size(): number {
    return this.#open.size;
  }

  /** An upgrade request for the tunnel path (the stream endpoint's `upgrade` event). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    void this.#upgrade(req, socket, head).catch((err: unknown) => {
      this.#log.error({ err }, 'ADB tunnel upgrade failed');
      if (!socket.destroyed) refuse(socket, 500, 'Internal Server Error', 'the tunnel could not be opened');
    });
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const outcome = (name: string) => this.#metrics.connections.inc({ outcome: name });
    if (this.#closed) {
      outcome('agent_stopping');
      return refuse(socket, 503, 'Service Unavailable', 'the agent is stopping');
    }
    const token = tunnelTokenOf(req);
    if (!token) {
      outcome('unauthenticated');
      return refuse(socket, 401, 'Unauthorized', 'an ADB tunnel token is required (Authorization: Bearer)');
    }
    let claims: AdbTunnelTokenClaims;
    try {
      claims = await this.#o.verify(token);
    } catch (error) {
      if (!(error instanceof StreamTokenError)) throw error;
      outcome('unauthenticated');
      return refuse(socket, 401, 'Unauthorized', error.message);
    }
    const observed = this.#o.phones.observed(claims.deviceId);
    const endpoint = this.#o.phones.adbEndpoint(claims.deviceId);
    if (observed?.state !== agentv1.DeviceState.RUNNING || endpoint === undefined) {
      outcome('not_running');
      const state = observed ? (agentv1.DeviceState[observed.state] ?? 'UNKNOWN') : 'not on this host';
      return refuse(socket, 409, 'Conflict', `phone ${claims.deviceId} is ${state}, not RUNNING`);
    }
    let tcp: Socket;
    try {
      tcp = await this.#dial(endpoint);
    } catch (err) {
      outcome('unreachable');
      this.#log.warn({ err, deviceId: claims.deviceId }, 'the phone’s adbd could not be reached');
      return refuse(socket, 502, 'Bad Gateway', `phone ${claims.deviceId}: its adbd could not be reached`);
    }
    if (socket.destroyed || this.#closed) {
      tcp.destroy();
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      outcome('opened');
      this.#pipe(claims, ws, tcp, req.socket.remoteAddress ?? '');
    });
  }

  #dial(endpoint: AdbEndpoint): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const tcp = connect({ host: endpoint.host, port: endpoint.port, noDelay: true });
      tcp.setTimeout(this.#o.connectTimeoutMs ?? 5000, () => tcp.destroy(new Error('connect timed out')));
      tcp.once('error', reject);
      tcp.once('connect', () => {
        tcp.off('error', reject);
        tcp.setTimeout(0);
        resolve(tcp);
      });
    });
  }

  #pipe(claims: AdbTunnelTokenClaims, ws: WebSocket, tcp: Socket, clientAddress: string): void {
    const c: Connection = {
      id: randomUUID(),
      claims,
      ws,
      tcp,
      openedAt: this.#now(),
      clientAddress,
      ended: false,
    };
    this.#open.add(c);
    this.#metrics.open.inc();
    this.#o.report({ ...this.#who(c), event: agentv1.AdbTunnelReport_Event.OPENED, clientAddress });
    this.#log.info(
      { connectionId: c.id, tunnelId: claims.tunnelId, deviceId: claims.deviceId, clientAddress },
      'ADB tunnel connection opened',
    );
    const toDevice = this.#metrics.bytes.labels('to_device');
    const fromDevice = this.#metrics.bytes.labels('from_device');
    bridgeWebSocket(ws, tcp, {
      highWaterMark: this.#highWaterMark,
      onToSocket: (n) => toDevice.inc(n),
      onFromSocket: (n) => fromDevice.inc(n),
      onEnd: (side, error) => {
        if (error) this.#log.debug({ err: error, side, connectionId: c.id }, 'ADB tunnel connection failed');
        if (side === 'websocket') {
          if (error?.message.startsWith('the tunnel carries')) this.#end(c, 'ERROR', 1003, error.message);
          else this.#end(c, 'CLIENT_CLOSED');
        } else if (error) this.#end(c, 'DEVICE_CLOSED', 1011, 'the connection to the phone failed');
        else this.#end(c, 'DEVICE_CLOSED', 1000, 'the phone closed the connection');
      },
    });
  }

  #who(c: Connection) {
    return {
      tunnelId: c.claims.tunnelId,
      connectionId: c.id,
      deviceId: c.claims.deviceId,
      tenantId: c.claims.tenantId,
      actor: c.claims.actor,
      time: timestampFromMs(this.#now()),
    };
  }

  /** Ends one connection once: closes both sides and reports its end. */
  #end(c: Connection, reason: string, code?: number, message?: string): void {
    if (c.ended) return;
    c.ended = true;
    this.#open.delete(c);
    this.#metrics.open.dec();
    if (code !== undefined && c.ws.readyState === c.ws.OPEN) c.ws.close(code, message?.slice(0, 120));
    else if (c.ws.readyState !== c.ws.CLOSED) c.ws.terminate();
    // Whatever the client sent is written before the phone's side closes.
    c.tcp.end();
    c.tcp.destroySoon();
    const durationMs = this.#now() - c.openedAt;
    const report = {
      ...this.#who(c),
      event: agentv1.AdbTunnelReport_Event.ENDED,
      clientAddress: c.clientAddress,
      durationMs: BigInt(Math.max(0, Math.round(durationMs))),
      bytesToDevice: BigInt(c.tcp.bytesWritten),
      bytesFromDevice: BigInt(c.tcp.bytesRead),
      endReason: reason,
    };
    this.#o.report(report);
    this.#log.info(
      {
        connectionId: c.id,
        tunnelId: c.claims.tunnelId,
        deviceId: c.claims.deviceId,
        reason,
        durationMs,
        bytesToDevice: c.tcp.bytesWritten,
        bytesFromDevice: c.tcp.bytesRead,
      },
      'ADB tunnel connection ended',
    );
  }

  /** Ends the connections a revocation (or a stopped phone) names; returns how many. */
  end(match: TunnelMatch, reason: string, message: string): number {
    const { sessionId, deviceId, tenantId } = match;
    if (!sessionId && !deviceId && !tenantId) return 0;
    let ended = 0;
    for (const c of [...this.#open]) {
      if (sessionId && c.claims.tunnelId !== sessionId) continue;
      if (deviceId && c.claims.deviceId !== deviceId) continue;
      if (tenantId && c.claims.tenantId !== tenantId) continue;
      // 4000-4999: the application's own close codes; the client shows the reason.
      this.#end(c, reason, 4001, message);
      ended++;
    }
    return ended;
  }

  /** Ends every connection (the agent is stopping) and refuses new ones. */
  close(): void {
    this.#closed = true;
    for (const c of [...this.#open]) this.#end(c, 'AGENT_STOPPING', 1001, 'the agent is stopping');
    this.#wss.close();
  }
}
