import { availableParallelism } from 'node:os';
import type { StreamTokenClaims } from '@cphone/proto';
import type { types } from 'mediasoup';
import { type Logger, pino } from 'pino';
import { Registry } from 'prom-client';
import type { FeedProvider } from './feed.js';
import type { SessionEvent } from './session.js';

export interface SfuOptions {
  /** Opens a phone's media when its first viewer joins. */
  readonly feeds: FeedProvider;
  /**
   * The claims of a token that may join now (the agent's StreamAuth.verify). Throw
   * StreamTokenError (from @cphone/proto) to refuse with 4401 and its message; any other error
   * refuses with 4500 and is logged.
   */
  verifyToken(token: string): Promise<StreamTokenClaims>;
  /** Session joins, periodic stats and ends (the agent's StreamSessionReport). */
  onSessionEvent?(event: SessionEvent): void;
  /** Default: a silent logger. */
  readonly logger?: Logger;
  /** Where the sfu's metrics go. Default: a registry of its own (`sfu.registry`). */
  readonly registry?: Registry;
  /** mediasoup workers (processes). Default max(1, floor(cores / 2)). */
  readonly workers?: number;
  /** Where viewers' WebRTC (UDP and TCP) is received. Default 127.0.0.1. */
  readonly listenIp?: string;
  /** The address put in ICE candidates when it differs from listenIp (NAT, 0.0.0.0). */
  readonly announcedAddress?: string;
  /** The UDP+TCP port of each worker's WebRtcServer; overrides rtcPort. */
  readonly rtcPorts?: readonly number[];
  /** Worker i listens on rtcPort + i. 0: any free port (tests). Default 40000. */
  readonly rtcPort?: number;
  /**
   * The most the phone's video may use, bits/s, declared on the video producer. mediasoup wants
   * this much for every viewer, so its bandwidth estimator probes up to 1.35 times it; without it
   * the estimate never rises above max(600 kbit/s, 1.35 × what the phone sends now), and a feed
   * following viewers' links could never learn there is room for more. Default 4 Mbit/s.
   */
  readonly videoMaxBitrate?: number;
  /** A room (router, feed) stays this long after its last seat is given up. Default 30 s. */
  readonly graceMs?: number;
  /** A session whose socket dropped keeps its seat this long for a rejoin. Default 15 s. */
  readonly resumeWindowMs?: number;
  /** VIEW sessions a phone may have at once. Default 10. */
  readonly maxViewers?: number;
  /** CONTROL sessions a phone may have at once. Default 1. */
  readonly controlSeats?: number;
  /** How often a 'stats' event is emitted per connected session. Default 10 s. */
  readonly statsIntervalMs?: number;
  /**
   * How often each joined viewer's link (bandwidth estimate, loss) is sampled for the feed, when
   * the feed takes it (`Feed.viewerLink`). Default 1 s.
   */
  readonly linkIntervalMs?: number;
  /** How often sockets are pinged; one missing pong cuts the socket. Default 15 s. */
  readonly pingIntervalMs?: number;
  /** A socket must join within this. Default 10 s. */
  readonly joinTimeoutMs?: number;
  /** Default 'warn'. */
  readonly workerLogLevel?: types.WorkerLogLevel;
  /** Wall clock, ms (tests). Default Date.now. */
  readonly now?: () => number;
}

export type ResolvedSfuOptions = Required<
  Omit<SfuOptions, 'onSessionEvent' | 'announcedAddress' | 'rtcPort'>
> & {
  readonly announcedAddress: string | undefined;
  onSessionEvent(event: SessionEvent): void;
};

export function resolveOptions({
  feeds,
  verifyToken,
  onSessionEvent = () => {},
  logger = pino({ enabled: false }),
  registry = new Registry(),
  workers = Math.max(1, Math.floor(availableParallelism() / 2)),
  listenIp = '127.0.0.1',
  announcedAddress,
  rtcPort = 40_000,
  rtcPorts,
  videoMaxBitrate = 4_000_000,
  graceMs = 30_000,
  resumeWindowMs = 15_000,
  maxViewers = 10,
  controlSeats = 1,
  statsIntervalMs = 10_000,
  linkIntervalMs = 1000,
  pingIntervalMs = 15_000,
  joinTimeoutMs = 10_000,
  workerLogLevel = 'warn',
  now = Date.now,
}: SfuOptions): ResolvedSfuOptions {
  if (!Number.isInteger(workers) || workers < 1)
    throw new RangeError(`workers must be a positive integer, not ${workers}`);
  const ports = rtcPorts ?? Array.from({ length: workers }, (_, i) => (rtcPort === 0 ? 0 : rtcPort + i));
  if (!Number.isInteger(videoMaxBitrate) || videoMaxBitrate < 100_000)
    throw new RangeError(`videoMaxBitrate must be an integer of at least 100000, not ${videoMaxBitrate}`);
  if (ports.length !== workers)
    throw new RangeError(`rtcPorts names ${ports.length} ports for ${workers} workers`);
  return {
    feeds,
    verifyToken,
    onSessionEvent,
    logger,
    registry,
    workers,
    listenIp,
    announcedAddress,
    rtcPorts: ports,
    videoMaxBitrate,
    graceMs,
    resumeWindowMs,
    maxViewers,
    controlSeats,
    statsIntervalMs,
    linkIntervalMs,
    pingIntervalMs,
    joinTimeoutMs,
    workerLogLevel,
    now,
  };
}
