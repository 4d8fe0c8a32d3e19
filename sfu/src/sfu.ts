// The sfu: a pool of mediasoup workers, a room per watched phone, a session per seat, and the
// signaling sockets viewers join through. The agent mounts `handleUpgrade` on its HTTPS server,
// supplies feeds and token checks, and steers it with revoke / closeDevice / close.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type StreamTokenClaims, StreamTokenError } from '@cphone/proto';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { WebSocketServer } from 'ws';
import { CloseCode, SignalClose } from './close-codes.js';
import type { VideoSize } from './feed.js';
import { InputError, parseViewerInput } from './input.js';
import { createSfuMetrics, type SfuMetrics } from './metrics.js';
import { type ResolvedSfuOptions, resolveOptions, type SfuOptions } from './options.js';
import type { Room } from './room.js';
import { Rooms } from './rooms.js';
import { Session, type SessionInfo } from './session.js';
import { type ConnectionHandler, SignalConnection } from './signaling/connection.js';
import {
  badMessage,
  type ClientReport,
  MAX_SIGNAL_FRAME_BYTES,
  type QualityPreset,
  type ReportResult,
  type Request,
} from './signaling/protocol.js';
import { ViewerMedia } from './viewer-media.js';
import { answerViewerRequest } from './viewer-requests.js';
import { WorkerPool } from './worker-pool.js';

/** Which open sessions a revocation ends: every field given must match. */
export interface SessionMatch {
  readonly sessionId?: string;
  readonly deviceId?: string;
  readonly tenantId?: string;
}

/** A join still checking its token when a revocation arrives must not slip past it. */
const REVOCATION_MEMORY_MS = 60_000;

interface Viewer {
  session: Session | undefined;
  media: ViewerMedia | undefined;
  /** What this socket's join (or a later setQuality) asked for. */
  quality: QualityPreset;
  joining: boolean;
  joinTimer: NodeJS.Timeout | undefined;
}

export async function createSfu(options: SfuOptions): Promise<Sfu> {
  const resolved = resolveOptions(options);
  const log = resolved.logger.child({ module: 'sfu' });
  const metrics = createSfuMetrics(resolved.registry);
  const pool = await WorkerPool.create({
    count: resolved.workers,
    listenIp: resolved.listenIp,
    announcedAddress: resolved.announcedAddress,
    ports: resolved.rtcPorts,
    logLevel: resolved.workerLogLevel,
    log,
    metrics,
  });
  log.info(
    { workers: resolved.workers, listenIp: resolved.listenIp, rtcPorts: resolved.rtcPorts },
    'sfu started',
  );
  return new Sfu(resolved, pool, log, metrics);
}

export class Sfu implements ConnectionHandler {
  readonly registry: Registry;
  readonly #options: ResolvedSfuOptions;
  readonly #pool: WorkerPool;
  readonly #log: Logger;
  readonly #metrics: SfuMetrics;
  readonly #wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_SIGNAL_FRAME_BYTES,
    perMessageDeflate: false,
  });
  readonly #viewers = new Map<SignalConnection, Viewer>();
  readonly #sessions = new Map<string, Session>();
  readonly #rooms: Rooms;
  /** Joins of one phone run one at a time: seat counts and room opening stay consistent. */
  readonly #deviceLocks = new Map<string, Promise<unknown>>();
  #revocations: { at: number; match: SessionMatch; reason: string; message: string }[] = [];
  readonly #timers: NodeJS.Timeout[];
  #sampling = false;
  #closed = false;

  /** Use createSfu. */
  constructor(options: ResolvedSfuOptions, pool: WorkerPool, log: Logger, metrics: SfuMetrics) {
    this.#options = options;
    this.registry = options.registry;
    this.#pool = pool;
    this.#rooms = new Rooms({
      pool,
      feeds: options.feeds,
      videoMaxBitrate: options.videoMaxBitrate,
      graceMs: options.graceMs,
      log,
      metrics,
      onVideoSize: (deviceId, size) => this.#videoSize(deviceId, size),
      onLost: (room) => this.#roomLost(room),
    });
    this.#log = log;
    this.#metrics = metrics;
    this.#timers = [
      setInterval(() => this.#keepAlive(), options.pingIntervalMs),
      setInterval(() => void this.#emitStats(), options.statsIntervalMs),
      setInterval(() => void this.#sampleLinks(), options.linkIntervalMs),
    ];
    for (const timer of this.#timers) timer.unref();
  }

  /** Takes an HTTP upgrade (the agent routes its signaling path here) and serves it as a viewer socket. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    this.#wss.handleUpgrade(request, socket, head, (ws) => {
      const remoteAddress = request.socket.remoteAddress;
      const connection = new SignalConnection(ws, this, this.#log.child({ remoteAddress }), remoteAddress);
      const viewer: Viewer = {
        session: undefined,
        media: undefined,
        quality: 'auto',
        joining: false,
        joinTimer: undefined,
      };
      viewer.joinTimer = setTimeout(() => {
        if (!viewer.session && !viewer.joining)
          this.#closeSocket(connection, new SignalClose(CloseCode.JOIN_TIMEOUT, 'no join came in time'));
      }, this.#options.joinTimeoutMs);
      this.#viewers.set(connection, viewer);
    });
  }

  /** Ends the matching open sessions with 4410 and `reason: message`; returns how many. */
  revoke(match: SessionMatch, reason: string, message: string): number {
    if (!match.sessionId && !match.deviceId && !match.tenantId) return 0;
    const now = this.#options.now();
    this.#revocations = this.#revocations.filter((r) => r.at > now - REVOCATION_MEMORY_MS);
    this.#revocations.push({ at: now, match, reason, message });
    const ended = [...this.#sessions.values()].filter((s) => matches(s.claims, match));
    for (const session of ended) this.#end(session, new SignalClose(CloseCode.REVOKED, message, reason));
    return ended.length;
  }

  /** The phone stopped or went away: ends its sessions with 4411 and closes its room now. */
  closeDevice(deviceId: string, reason: string, message: string): number {
    const ended = [...this.#sessions.values()].filter((s) => s.deviceId === deviceId);
    for (const session of ended)
      this.#end(session, new SignalClose(CloseCode.DEVICE_STOPPED, message, reason));
    const room = this.#rooms.get(deviceId);
    if (room) this.#rooms.close(room);
    return ended.length;
  }

  /**
   * Caps what mediasoup lets itself send to a session's viewer (mediasoup's
   * `setMaxOutgoingBitrate` on its receiving transport; 0 lifts it): its bandwidth estimate, and so
   * what the feed hears of the link, stays under the cap. The media is not paced by it. Resolves
   * false when the session has no receiving transport now. For tests and experiments.
   */
  async limitOutgoingBitrate(sessionId: string, bitrate: number): Promise<boolean> {
    const connection = this.#sessions.get(sessionId)?.connection;
    const media = connection && this.#viewers.get(connection)?.media;
    return media ? media.limitOutgoing(bitrate) : false;
  }

  sessions(): SessionInfo[] {
    const now = this.#options.now();
    return [...this.#sessions.values()].map((s) => s.info(now));
  }

  /** Devices with a room open now. */
  rooms(): string[] {
    return this.#rooms.devices();
  }

  /** Ends every session with 1001, closes every room and worker; resolves once the sockets are closed. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#timers) clearInterval(timer);
    const shutdown = new SignalClose(CloseCode.SHUTDOWN, 'the host is shutting down');
    for (const session of [...this.#sessions.values()]) this.#end(session, shutdown);
    const sockets = [...this.#viewers.keys()].map(
      (c) =>
        new Promise<void>((resolve) =>
          c.socket.readyState === c.socket.CLOSED ? resolve() : c.socket.once('close', () => resolve()),
        ),
    );
    for (const connection of this.#viewers.keys()) this.#closeSocket(connection, shutdown);
    this.#rooms.closeAll();
    await Promise.all(sockets);
    this.#wss.close();
    this.#pool.close();
    this.#log.info('sfu closed');
  }

  // ConnectionHandler

  async handle(connection: SignalConnection, request: Request): Promise<unknown> {
    const viewer = this.#viewers.get(connection);
    if (!viewer) throw new SignalClose(CloseCode.INTERNAL, 'unknown socket');
    if (request.type === 'join') {
      if (viewer.session || viewer.joining) throw badMessage('join was sent already');
      return this.#join(connection, viewer, request);
    }
    const { session, media } = viewer;
    if (!session || !media) throw badMessage(`join before ${request.type}`);
    return answerViewerRequest(request, {
      session,
      media,
      onInput: (text) => this.#input(session, text),
      report: (report) => this.#clientReport(session, report),
      setQuality: (quality) => {
        viewer.quality = quality;
        if (session.connection === connection)
          session.room.setViewer({ sessionId: session.id, rights: session.rights, quality });
      },
      leave: () => this.#end(session, new SignalClose(CloseCode.NORMAL, 'the viewer left')),
    });
  }

  fail(connection: SignalConnection, error: SignalClose): void {
    const session = this.#viewers.get(connection)?.session;
    if (session && session.connection === connection) this.#end(session, error);
    else this.#closeSocket(connection, error);
  }

  closed(connection: SignalConnection): void {
    const viewer = this.#viewers.get(connection);
    if (!viewer) return;
    this.#viewers.delete(connection);
    clearTimeout(viewer.joinTimer);
    viewer.media?.close();
    const session = viewer.session;
    if (!session || session.ended || session.connection !== connection) return;
    if (connection.brokeProtocol) {
      this.#end(session, badMessage('the socket broke the WebSocket protocol'));
      return;
    }
    // The socket dropped: the seat waits for the same session to join again.
    session.connection = undefined;
    session.room.removeViewer(session.id);
    session.disconnect(this.#options.now());
    session.resumeTimer = setTimeout(
      () =>
        this.#end(session, new SignalClose(CloseCode.NORMAL, 'the viewer did not come back', 'DISCONNECTED')),
      this.#options.resumeWindowMs,
    );
    connection.log.info({ sessionId: session.id }, 'viewer socket dropped; seat held for a rejoin');
  }

  async #join(
    connection: SignalConnection,
    viewer: Viewer,
    request: Extract<Request, { type: 'join' }>,
  ): Promise<unknown> {
    const started = this.#options.now();
    const timer = this.#metrics.joinDuration.startTimer();
    viewer.joining = true;
    viewer.quality = request.quality ?? 'auto';
    try {
      const claims = await this.#verify(request.token);
      if (request.sessionId && request.sessionId !== claims.sessionId)
        throw new SignalClose(CloseCode.BAD_TOKEN, 'the session id is not the token’s');
      if (claims.expiresAt * 1000 <= this.#options.now())
        throw new SignalClose(CloseCode.BAD_TOKEN, 'the stream token has expired');
      const revoked = this.#revocations.find((r) => r.at >= started && matches(claims, r.match));
      if (revoked) throw new SignalClose(CloseCode.REVOKED, revoked.message, revoked.reason);
      if (this.#closed) throw new SignalClose(CloseCode.SHUTDOWN, 'the host is shutting down');
      const { session, resumed } = await this.#locked(claims.deviceId, () =>
        this.#seat(connection, viewer, claims),
      );
      this.#metrics.joins.inc({ outcome: resumed ? 'resumed' : 'joined' });
      this.#event(session, 'joined', {
        resumed,
        ...(connection.remoteAddress !== undefined ? { viewerAddress: connection.remoteAddress } : {}),
      });
      connection.log.info({ sessionId: session.id, deviceId: session.deviceId, resumed }, 'viewer joined');
      const videoSize = session.room.videoSize();
      return {
        sessionId: session.id,
        deviceId: session.deviceId,
        tenantId: session.claims.tenantId,
        rights: session.rights,
        expiresAt: session.claims.expiresAt,
        resumed,
        quality: viewer.quality,
        routerRtpCapabilities: session.room.router.rtpCapabilities,
        ...(videoSize ? { videoSize } : {}),
      };
    } catch (error) {
      this.#metrics.joins.inc({
        outcome: error instanceof SignalClose ? error.reason.toLowerCase() : 'internal',
      });
      throw error;
    } finally {
      viewer.joining = false;
      timer();
    }
  }

  async #verify(token: string): Promise<StreamTokenClaims> {
    try {
      return await this.#options.verifyToken(token);
    } catch (error) {
      if (error instanceof StreamTokenError) throw new SignalClose(CloseCode.BAD_TOKEN, error.message);
      if (error instanceof SignalClose) throw error;
      this.#log.error({ err: error }, 'token check failed');
      throw new SignalClose(CloseCode.INTERNAL, 'the token could not be checked');
    }
  }

  /** Takes a seat (or the session's own, on a rejoin) and attaches the socket. Runs under the phone's lock. */
  async #seat(
    connection: SignalConnection,
    viewer: Viewer,
    claims: StreamTokenClaims,
  ): Promise<{ session: Session; resumed: boolean }> {
    const gone = () => new SignalClose(CloseCode.NORMAL, 'the socket closed while joining');
    if (connection.closing) throw gone();
    const existing = this.#sessions.get(claims.sessionId);
    if (existing) {
      if (existing.deviceId !== claims.deviceId)
        throw new SignalClose(CloseCode.BAD_TOKEN, 'the session is another phone’s');
      const old = existing.connection;
      if (old) {
        existing.connection = undefined;
        existing.room.removeViewer(existing.id);
        this.#viewers.get(old)?.media?.close();
        this.#closeSocket(
          old,
          new SignalClose(CloseCode.REPLACED, 'the session joined from another connection'),
        );
      }
      this.#attach(connection, viewer, existing);
      return { session: existing, resumed: true };
    }
    const seats = [...this.#sessions.values()].filter(
      (s) => s.deviceId === claims.deviceId && s.rights === claims.rights,
    ).length;
    const cap = claims.rights === 'control' ? this.#options.controlSeats : this.#options.maxViewers;
    if (seats >= cap) {
      throw new SignalClose(
        CloseCode.FULL,
        claims.rights === 'control'
          ? 'someone else is controlling this phone'
          : `this phone already has ${cap} viewers`,
      );
    }
    const room = await this.#rooms.acquire(claims.deviceId);
    if (connection.closing) {
      this.#releaseIfIdle(claims.deviceId);
      throw gone();
    }
    const session = new Session(claims, room, this.#options.now());
    this.#sessions.set(session.id, session);
    this.#countSeats(session);
    this.#attach(connection, viewer, session);
    return { session, resumed: false };
  }

  #attach(connection: SignalConnection, viewer: Viewer, session: Session): void {
    clearTimeout(viewer.joinTimer);
    viewer.session = session;
    viewer.media = new ViewerMedia(session.room);
    session.connection = connection;
    session.connect(this.#options.now());
    session.room.setViewer({ sessionId: session.id, rights: session.rights, quality: viewer.quality });
  }

  #end(session: Session, close: SignalClose): void {
    if (session.ended) return;
    session.ended = true;
    clearTimeout(session.resumeTimer);
    const now = this.#options.now();
    const connection = session.connection;
    session.connection = undefined;
    if (connection) {
      this.#viewers.get(connection)?.media?.close();
      this.#closeSocket(connection, close);
    }
    session.disconnect(now);
    session.room.removeViewer(session.id);
    this.#sessions.delete(session.id);
    this.#countSeats(session);
    this.#metrics.sessionsEnded.inc({ reason: close.reason });
    this.#event(session, 'ended', {
      viewerSeconds: session.viewerSeconds(now),
      endReason: close.reason,
      stats: session.summary(),
    });
    this.#releaseIfIdle(session.deviceId);
  }

  /** Sets the phone's seat gauge; a phone nobody watches leaves no series behind. */
  #countSeats({ deviceId, rights }: Session): void {
    const labels = { device_id: deviceId, rights };
    const seats = [...this.#sessions.values()].filter((s) => s.deviceId === deviceId && s.rights === rights);
    if (seats.length) this.#metrics.viewers.set(labels, seats.length);
    else this.#metrics.viewers.remove(labels);
  }

  /** Starts the room's grace once no session holds a seat on the phone. */
  #releaseIfIdle(deviceId: string): void {
    this.#rooms.release(deviceId, () => [...this.#sessions.values()].some((s) => s.deviceId === deviceId));
  }

  #roomLost(room: Room): void {
    const close = new SignalClose(CloseCode.MEDIA_RESTART, 'the media server restarted; join again');
    for (const session of [...this.#sessions.values()]) if (session.room === room) this.#end(session, close);
  }

  #input(session: Session, text: string): void {
    if (session.ended || session.room.closed) return;
    let message: ReturnType<typeof parseViewerInput>;
    try {
      message = parseViewerInput(text);
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      this.#metrics.inputMessages.inc({ outcome: 'malformed' });
      this.#end(session, new SignalClose(CloseCode.BAD_MESSAGE, error.message));
      return;
    }
    session.room.feed.input(message).then(
      () => this.#metrics.inputMessages.inc({ outcome: 'forwarded' }),
      (error: unknown) => {
        this.#metrics.inputMessages.inc({ outcome: 'failed' });
        this.#log.warn(
          { err: error, sessionId: session.id, type: message.type },
          'the phone did not take input',
        );
      },
    );
  }

  #clientReport(session: Session, report: ClientReport): ReportResult {
    const measured = session.report(report);
    for (const m of measured) {
      if (typeof m === 'number') this.#metrics.glassToGlass.observe(m / 1000);
      this.#metrics.latencySamples.inc({ outcome: typeof m === 'number' ? 'measured' : m });
    }
    const { offsetMs, rttMs } = session.clock;
    return {
      glassToGlassMs: measured.map((m) => (typeof m === 'number' ? Math.round(m * 10) / 10 : null)),
      ...(offsetMs !== undefined ? { clockOffsetMs: offsetMs } : {}),
      ...(rttMs !== undefined ? { clockRttMs: rttMs } : {}),
    };
  }

  #videoSize(deviceId: string, size: VideoSize): void {
    for (const session of this.#sessions.values()) {
      if (session.deviceId === deviceId)
        session.connection?.event('videoSize', { width: size.width, height: size.height });
    }
  }

  #event(session: Session, type: 'joined' | 'stats' | 'ended', extra: object): void {
    try {
      this.#options.onSessionEvent({
        type,
        sessionId: session.id,
        deviceId: session.deviceId,
        tenantId: session.claims.tenantId,
        rights: session.rights,
        at: new Date(this.#options.now()),
        ...extra,
      });
    } catch (error) {
      this.#log.error({ err: error }, 'session event handler failed');
    }
  }

  async #emitStats(): Promise<void> {
    for (const session of [...this.#sessions.values()]) {
      const connection = session.connection;
      const media = connection && this.#viewers.get(connection)?.media;
      if (!media) continue;
      try {
        const figures = await media.videoFigures();
        if (session.ended) continue;
        const stats = session.stats(figures, true);
        if (figures) {
          this.#metrics.consumerBitrate.observe(stats.bitrateBps);
          this.#metrics.packetLoss.observe(stats.packetLoss);
          this.#metrics.rtt.observe(stats.rttMs / 1000);
        }
        // 0 until the player reports: no figure, not a frozen picture.
        if (stats.framesDecoded > 0) {
          this.#metrics.fps.observe(stats.fps);
          this.#metrics.jitterBuffer.observe(stats.jitterBufferMs / 1000);
        }
        this.#event(session, 'stats', { stats });
      } catch (error) {
        this.#log.debug({ err: error, sessionId: session.id }, 'stats unavailable');
      }
    }
  }

  /** Each joined viewer's link, to its room's feed; a round still running when the next is due is not doubled. */
  async #sampleLinks(): Promise<void> {
    if (this.#sampling) return;
    this.#sampling = true;
    try {
      await Promise.all(
        [...this.#sessions.values()].map(async (session) => {
          const connection = session.connection;
          const media = connection && this.#viewers.get(connection)?.media;
          if (!media || !session.room.followsLinks) return;
          try {
            const link = await media.link();
            if (link && !session.ended && session.connection === connection)
              session.room.viewerLink(session.id, link);
          } catch (error) {
            // A transport closing under the request: the viewer is leaving.
            this.#log.debug({ err: error, sessionId: session.id }, 'link figures unavailable');
          }
        }),
      );
    } finally {
      this.#sampling = false;
    }
  }

  #closeSocket(connection: SignalConnection, close: SignalClose): void {
    if (connection.closing) return;
    this.#metrics.signalingClosed.inc({ code: close.code });
    connection.close(close);
  }

  #keepAlive(): void {
    for (const connection of this.#viewers.keys()) {
      if (!connection.alive) {
        connection.log.info('no pong; cutting the socket');
        connection.socket.terminate();
        continue;
      }
      connection.alive = false;
      connection.socket.ping();
    }
  }

  async #locked<T>(deviceId: string, run: () => Promise<T>): Promise<T> {
    const before = this.#deviceLocks.get(deviceId) ?? Promise.resolve();
    const result = before.then(run, run);
    const tail = result.catch(() => {});
    this.#deviceLocks.set(deviceId, tail);
    try {
      return await result;
    } finally {
      if (this.#deviceLocks.get(deviceId) === tail) this.#deviceLocks.delete(deviceId);
    }
  }
}

function matches(claims: StreamTokenClaims, match: SessionMatch): boolean {
  return (
    (match.sessionId === undefined || match.sessionId === claims.sessionId) &&
    (match.deviceId === undefined || match.deviceId === claims.deviceId) &&
    (match.tenantId === undefined || match.tenantId === claims.tenantId)
  );
}
