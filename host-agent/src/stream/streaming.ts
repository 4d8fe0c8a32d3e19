// The agent's streaming side: the public HTTPS/WSS endpoint (signaling at /signal, ADB tunnels at
// /adb; plain HTTP/WS on loopback with CPHONE_STREAM_TLS=off), the sfu, the
// screen feeds it opens, stream-token checks with the control plane's keys, revocations, and the
// session reports sent back for the audit trail and metering. Built once per agent; the control
// session hands it keys and revocations, the reconciler tells it when a phone stops.
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { agentv1 } from '@cphone/proto';
import { createSfu, type SessionEvent, type Sfu } from '@cphone/sfu';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AdbEndpoint } from '../adb/index.js';
import { type AdbTunnelReportInit, AdbTunnels } from '../adb-tunnel/index.js';
import { type AgentConfig, streamEndpoint } from '../config.js';
import type { ScrcpyServerBinary, ScreenDevice } from '../screen/index.js';
import { RUNGS } from './quality.js';
import { type PhoneDirectory, ScreenFeeds } from './screen-feeds.js';
import { StreamAuth } from './stream-auth.js';
import { loadStreamTls } from './stream-tls.js';
import { createStreamTelemetry } from './telemetry.js';

export type StreamReportInit = MessageInitShape<typeof agentv1.StreamSessionReportSchema>;

/** A report for the control plane: of a stream session, or of an ADB tunnel connection. */
export type StreamingReport =
  | { case: 'streamSessionReport'; value: StreamReportInit }
  | { case: 'adbTunnelReport'; value: AdbTunnelReportInit };

/** Reports kept while the control session is down (sent after the next Welcome); the oldest go first. */
const MAX_QUEUED_REPORTS = 10_000;

export interface StreamingOptions {
  readonly config: Pick<AgentConfig, 'hostId' | 'dataDir' | 'stream'>;
  readonly phones: PhoneDirectory;
  device(endpoint: AdbEndpoint): ScreenDevice;
  readonly server: ScrcpyServerBinary;
  /** Sends a report on the control session; false when it is down. */
  send(report: StreamingReport): boolean;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Wall clock, ms (tests). */
  readonly now?: () => number;
  /** A player page served at /view (the embedded default's test player); none when unset. */
  page?(): Promise<string>;
}

const EVENT: Record<SessionEvent['type'], agentv1.StreamSessionReport_Event> = {
  joined: agentv1.StreamSessionReport_Event.JOINED,
  stats: agentv1.StreamSessionReport_Event.STATS,
  ended: agentv1.StreamSessionReport_Event.ENDED,
};

/** A session event as the control plane records it. */
export function toStreamReport(event: SessionEvent): StreamReportInit {
  const s = event.stats;
  return {
    sessionId: event.sessionId,
    deviceId: event.deviceId,
    event: EVENT[event.type],
    time: timestampFromMs(event.at.getTime()),
    viewerSeconds: BigInt(Math.round(event.viewerSeconds ?? 0)),
    endReason: event.endReason ?? '',
    viewerAddress: event.viewerAddress ?? '',
    fps: s?.fps ?? 0,
    bitrateBps: BigInt(Math.round(s?.bitrateBps ?? 0)),
    packetLoss: s?.packetLoss ?? 0,
    rttMs: s?.rttMs ?? 0,
    jitterBufferMs: s?.jitterBufferMs ?? 0,
    glassToGlassP50Ms: s?.glassToGlassP50Ms ?? 0,
    glassToGlassP95Ms: s?.glassToGlassP95Ms ?? 0,
    framesDecoded: BigInt(Math.round(s?.framesDecoded ?? 0)),
    firstFrameMs: s?.firstFrameMs ?? 0,
  };
}

export class Streaming {
  readonly auth: StreamAuth;
  readonly feeds: ScreenFeeds;
  readonly tunnels: AdbTunnels;
  readonly #o: StreamingOptions;
  readonly #log: Logger;
  readonly #queued: StreamingReport[] = [];
  #sfu: Sfu | undefined;
  #server: Server | undefined;
  #port = 0;

  private constructor(options: StreamingOptions) {
    this.#o = options;
    this.#log = options.logger.child({ module: 'streaming' });
    this.auth = new StreamAuth({
      hostId: options.config.hostId,
      ...(options.now ? { now: options.now } : {}),
    });
    const telemetry = createStreamTelemetry(options.registry);
    this.feeds = new ScreenFeeds({
      phones: options.phones,
      device: (endpoint) => options.device(endpoint),
      server: options.server,
      onFrame: (_deviceId, frame) => telemetry.frame(frame),
      registry: options.registry,
      logger: options.logger,
    });
    this.tunnels = new AdbTunnels({
      verify: (token) => this.auth.verifyAdbTunnel(token),
      phones: options.phones,
      report: (report) => this.#send({ case: 'adbTunnelReport', value: report }),
      registry: options.registry,
      logger: options.logger,
      ...(options.now ? { now: options.now } : {}),
    });
  }

  /** Starts the sfu and the public endpoint; fails (and leaves nothing running) if either cannot. */
  static async start(options: StreamingOptions): Promise<Streaming> {
    const streaming = new Streaming(options);
    try {
      await streaming.#start();
    } catch (error) {
      await streaming.close();
      throw error;
    }
    return streaming;
  }

  async #start(): Promise<void> {
    const { stream, dataDir } = this.#o.config;
    const tls = stream.tls ? await loadStreamTls(stream, dataDir) : undefined;
    this.#sfu = await createSfu({
      feeds: this.feeds,
      verifyToken: (token) => this.auth.verify(token),
      onSessionEvent: (event) => this.#report(event),
      logger: this.#o.logger,
      registry: this.#o.registry,
      workers: stream.workers,
      listenIp: stream.rtcListenIp,
      ...(stream.rtcAnnouncedAddress !== undefined ? { announcedAddress: stream.rtcAnnouncedAddress } : {}),
      rtcPort: stream.rtcPort,
      // mediasoup probes each viewer's link up to this: the quality ladder's top can be reached.
      videoMaxBitrate: RUNGS['1080p30'].maxBitRate,
      graceMs: stream.roomGraceMs,
      maxViewers: stream.maxViewers,
      controlSeats: stream.controlSeats,
      ...(this.#o.now ? { now: this.#o.now } : {}),
    });
    const sfu = this.#sfu;
    const handle = (req: IncomingMessage, res: ServerResponse) => {
      const path = new URL(req.url ?? '/', 'https://agent').pathname;
      if (req.method === 'GET' && path === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
        return;
      }
      const page = this.#o.page;
      if (req.method === 'GET' && path === '/view' && page !== undefined) {
        page().then(
          (html) =>
            res
              .writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
              .end(html),
          (err: unknown) => {
            this.#log.error({ err }, 'player page failed');
            res.writeHead(500, { 'content-type': 'text/plain' }).end('player page failed\n');
          },
        );
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    };
    const server: Server = tls
      ? createHttpsServer({ cert: tls.cert, key: tls.key }, handle)
      : createHttpServer(handle);
    server.on('upgrade', (req, socket, head) => {
      const path = new URL(req.url ?? '/', 'https://agent').pathname;
      if (path === '/signal') sfu.handleUpgrade(req, socket, head);
      else if (path === '/adb') this.tunnels.handleUpgrade(req, socket, head);
      else socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
    });
    // A TLS handshake that fails (a scanner, a browser that refused the certificate) is no error of ours.
    if (tls)
      server.on('tlsClientError', (err) => this.#log.debug({ err }, 'stream endpoint TLS handshake failed'));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(stream.port, stream.bind, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#port = (server.address() as AddressInfo).port;
    this.#log.info({ endpoint: this.endpoint, rtcPort: stream.rtcPort }, 'stream endpoint listening');
  }

  /** The port the signaling server listens on. */
  get port(): number {
    return this.#port;
  }

  /** The URL viewers are sent to (Hello.stream_endpoint). */
  get endpoint(): string {
    return streamEndpoint(this.#o.config.stream, this.#port);
  }

  get sfu(): Sfu {
    if (!this.#sfu) throw new Error('streaming is not started');
    return this.#sfu;
  }

  /** Keys from a Welcome or a StreamKeys rotation. */
  setKeys(keys: readonly agentv1.StreamTokenKey[]): void {
    this.auth.setKeys(keys);
  }

  /** A StreamRevocation: refuse its tokens from now on and end the sessions it names at once. */
  revoke(revocation: agentv1.StreamRevocation): number {
    const match = this.auth.revoke(revocation);
    if (match === undefined || this.#sfu === undefined) return 0;
    const { reason, message, ...which } = match;
    const ended = this.#sfu.revoke(which, reason, message);
    const tunnels = this.tunnels.end(which, reason, message);
    this.#log.info({ ...which, reason, ended, tunnels }, 'stream sessions and ADB tunnels revoked');
    return ended + tunnels;
  }

  /** A phone's state changed: when it no longer runs here, its viewers are told and its room closes. */
  deviceChanged(device: agentv1.ObservedDevice): void {
    if (this.#sfu === undefined || device.state === agentv1.DeviceState.RUNNING) return;
    const state = agentv1.DeviceState[device.state] ?? 'UNKNOWN';
    this.tunnels.end(
      { deviceId: device.deviceId },
      'PHONE_NOT_RUNNING',
      `the phone is ${state.toLowerCase()}`,
    );
    if (!this.#sfu.rooms().includes(device.deviceId)) return;
    // Names of the agent's own: the control plane's DEVICE_STOPPED / DEVICE_DELETED bar a token for
    // good, where a phone this agent saw stop (a crash, a reboot) may be watched again once it runs.
    const reason =
      device.state === agentv1.DeviceState.DELETED || device.state === agentv1.DeviceState.DELETING
        ? 'PHONE_REMOVED'
        : 'PHONE_NOT_RUNNING';
    this.#sfu.closeDevice(device.deviceId, reason, `the phone is ${state.toLowerCase()}`);
  }

  /** The control session is up again: send what was kept while it was down. */
  welcomed(): void {
    while (this.#queued.length > 0) {
      if (!this.#o.send(this.#queued[0]!)) return;
      this.#queued.shift();
    }
  }

  #report(event: SessionEvent): void {
    // Stats are only worth their moment; joins and ends are the audit trail and the meter.
    this.#send({ case: 'streamSessionReport', value: toStreamReport(event) }, event.type !== 'stats');
  }

  /** Sends a report now, or keeps it for the next Welcome when the control session is down. */
  #send(report: StreamingReport, keep = true): void {
    if (this.#queued.length === 0 && this.#o.send(report)) return;
    if (!keep) return;
    this.#queued.push(report);
    if (this.#queued.length > MAX_QUEUED_REPORTS) {
      const dropped = this.#queued.shift();
      this.#log.warn({ report: dropped?.case }, 'report queue full: the oldest report dropped');
    }
  }

  /** Ends every session and tunnel connection (1001), closes the endpoint and the sfu; sends the ENDED reports it can. */
  async close(): Promise<void> {
    this.tunnels.close();
    // The sfu first: its sockets get their 1001 close frame before the server goes.
    await this.#sfu?.close();
    this.#sfu = undefined;
    const server = this.#server;
    this.#server = undefined;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
}
