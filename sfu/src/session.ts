// A stream session: one seat on a phone, named by its token's session id. It outlives its socket:
// a viewer whose socket drops keeps the seat for the resume window and takes it back by joining
// again with the same token; a join of a session already connected replaces its socket.
import type { StreamRightsName, StreamTokenClaims } from '@cphone/proto';
import { ClockOffset, glassToGlass, LatencyDigest, type LatencyMiss } from './latency.js';
import type { Room } from './room.js';
import type { SignalConnection } from './signaling/connection.js';
import type { ClientReport } from './signaling/protocol.js';
import type { SendFigures } from './viewer-media.js';

/** What a session reports: mediasoup's figures for the video it sends and the player's own. */
export interface SessionStats {
  /** Frames per second the player decoded (reported by the player; 0 until it reports). */
  readonly fps: number;
  /** Video bitrate sent to the viewer, bits per second. */
  readonly bitrateBps: number;
  /** Fraction of video packets lost, 0..1 (from the viewer's RTCP receiver reports). */
  readonly packetLoss: number;
  readonly rttMs: number;
  /** The player's average jitter buffer delay, ms (reported). */
  readonly jitterBufferMs: number;
  /** Frames the player decoded since its video started (reported). */
  readonly framesDecoded: number;
  /** The player's time to first frame, from its connect() to its first decoded frame, ms (reported; 0 until then). */
  readonly firstFrameMs: number;
  /**
   * Glass-to-glass latency percentiles, ms: over this period's samples in a 'stats' event, over the
   * session's life in an 'ended' one; 0 without samples.
   */
  readonly glassToGlassP50Ms: number;
  readonly glassToGlassP95Ms: number;
}

export type SessionEventType = 'joined' | 'stats' | 'ended';

/** What the agent turns into StreamSessionReport messages. */
export interface SessionEvent {
  readonly type: SessionEventType;
  readonly sessionId: string;
  readonly deviceId: string;
  readonly tenantId: string;
  readonly rights: StreamRightsName;
  readonly at: Date;
  /** Set on 'joined': whether the session took its seat back (a rejoin of a live session). */
  readonly resumed?: boolean;
  /** Set on 'joined': the viewer's address as the sfu saw it (a proxy's, behind one). */
  readonly viewerAddress?: string;
  /** Set on 'ended': seconds a viewer's socket was joined over the session's life. */
  readonly viewerSeconds?: number;
  /** Set on 'ended', UPPER_SNAKE_CASE (LEFT, DISCONNECTED, REVOKED, ...). */
  readonly endReason?: string;
  /** Set on 'stats' and 'ended' (the last figures, and the latency over the session's life). */
  readonly stats?: SessionStats;
}

/** A session as `sfu.sessions()` lists it. */
export interface SessionInfo {
  readonly sessionId: string;
  readonly deviceId: string;
  readonly tenantId: string;
  readonly rights: StreamRightsName;
  readonly joinedAt: Date;
  /** Whether a socket holds it now (false during the resume window). */
  readonly connected: boolean;
  readonly viewerSeconds: number;
}

export class Session {
  readonly claims: StreamTokenClaims;
  readonly room: Room;
  readonly joinedAt: Date;
  ended = false;
  /** The socket that holds the session now; none during the resume window. */
  connection: SignalConnection | undefined;
  /** Ends the session if no socket takes it back in time. */
  resumeTimer: NodeJS.Timeout | undefined;
  #connectedSince: number | undefined;
  #connectedMs = 0;
  #report: ClientReport = {};
  #samples: number[] = [];
  readonly #lifetime = new LatencyDigest();
  #sent: SendFigures | undefined;
  /** The player's clock against the host's (its `time` rounds). */
  readonly clock = new ClockOffset();

  constructor(claims: StreamTokenClaims, room: Room, now: number) {
    this.claims = claims;
    this.room = room;
    this.joinedAt = new Date(now);
  }

  get id(): string {
    return this.claims.sessionId;
  }

  get deviceId(): string {
    return this.claims.deviceId;
  }

  get rights(): StreamRightsName {
    return this.claims.rights;
  }

  get connected(): boolean {
    return this.#connectedSince !== undefined;
  }

  connect(now: number): void {
    clearTimeout(this.resumeTimer);
    this.resumeTimer = undefined;
    this.#connectedSince ??= now;
  }

  disconnect(now: number): void {
    if (this.#connectedSince !== undefined) this.#connectedMs += now - this.#connectedSince;
    this.#connectedSince = undefined;
  }

  viewerSeconds(now: number): number {
    const open = this.#connectedSince !== undefined ? now - this.#connectedSince : 0;
    return Math.round((this.#connectedMs + open) / 1000);
  }

  /**
   * Keeps the player's latest figures and its clock rounds, and works out the glass-to-glass
   * latency of the frames it presented; the latencies pile up until the next stats. Returns each
   * presented frame's latency (ms) or why there is none, in order.
   */
  report(report: ClientReport): (number | LatencyMiss)[] {
    const { glassToGlassMs, frames, clockSync, ...figures } = report;
    this.#report = { ...this.#report, ...figures };
    for (const sample of clockSync ?? []) this.clock.add(sample);
    const measured = frames ? glassToGlass(frames, this.clock, this.room.frames) : [];
    const latencies = [...(glassToGlassMs ?? []), ...measured.filter((m) => typeof m === 'number')];
    for (const ms of latencies) this.#lifetime.add(ms);
    this.#samples.push(...latencies);
    // A player that reports and is never asked for stats must not grow this without bound.
    if (this.#samples.length > 3000) this.#samples.splice(0, this.#samples.length - 3000);
    return measured;
  }

  /** The period's figures; takes (and forgets) the glass-to-glass samples when `drain`. */
  stats(sent: SendFigures | undefined, drain: boolean): SessionStats {
    if (sent) this.#sent = sent;
    const samples = [...this.#samples].sort((a, b) => a - b);
    if (drain) this.#samples = [];
    return {
      ...this.#figures(sent),
      glassToGlassP50Ms: percentile(samples, 0.5),
      glassToGlassP95Ms: percentile(samples, 0.95),
    };
  }

  /** What an ended session leaves: the last figures, and the latency over its whole life. */
  summary(): SessionStats {
    return {
      ...this.#figures(this.#sent),
      glassToGlassP50Ms: this.#lifetime.percentile(0.5),
      glassToGlassP95Ms: this.#lifetime.percentile(0.95),
    };
  }

  #figures(sent: SendFigures | undefined) {
    return {
      fps: this.#report.fps ?? 0,
      bitrateBps: Math.round(sent?.bitrateBps ?? 0),
      packetLoss: sent?.packetLoss ?? 0,
      rttMs: sent?.rttMs ?? 0,
      jitterBufferMs: this.#report.jitterBufferMs ?? 0,
      framesDecoded: this.#report.framesDecoded ?? 0,
      firstFrameMs: this.#report.firstFrameMs ?? 0,
    };
  }

  info(now: number): SessionInfo {
    return {
      sessionId: this.id,
      deviceId: this.deviceId,
      tenantId: this.claims.tenantId,
      rights: this.rights,
      joinedAt: this.joinedAt,
      connected: this.connected,
      viewerSeconds: this.viewerSeconds(now),
    };
  }
}

/** Nearest-rank percentile of sorted samples; 0 for none. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}
