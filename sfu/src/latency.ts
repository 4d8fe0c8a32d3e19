// Glass-to-glass latency: from the moment the phone captured a frame to the moment the browser
// presented it, with no clock shared between them. Three pieces, each on a clock we can trust:
//  - FrameTimes (one per room): the feed says, for every frame it sends, its RTP timestamp and its
//    capture time on this host's clock (the agent maps the phone's PTS onto it).
//  - ClockOffset (one per session): the browser's clock against this host's, estimated NTP-style
//    over the signaling socket (the `time` request), keeping the round with the smallest RTT.
//  - The player reports presented frames by RTP timestamp (requestVideoFrameCallback metadata) and
//    presentation time on its own clock; glassToGlass() puts that on the host clock and subtracts.
// mediasoup's simple consumers rewrite SSRC and sequence numbers but pass the producer's RTP
// timestamps through (SimpleConsumer::SendRtpPacket), so the browser sees the feed's timestamps.

/** This host's clock, Unix epoch ms with sub-ms precision: the one FrameInfo.captureTimeMs is on. */
export function hostTimeMs(): number {
  return performance.timeOrigin + performance.now();
}

/** A frame the feed sent: its 90 kHz RTP timestamp and when the phone captured it (host clock, ms). */
export interface FrameTiming {
  readonly rtpTimestamp: number;
  readonly captureTimeMs: number;
}

/** One clock round: the player's send time, the host's answer time, the player's receive time. */
export interface ClockSample {
  /** Player clock, ms, when the `time` request left. */
  readonly t0: number;
  /** Host clock, ms, when the sfu answered it. */
  readonly serverTimeMs: number;
  /** Player clock, ms, when the answer arrived. */
  readonly t1: number;
}

/** A frame the player presented: its RTP timestamp and when it showed it (player clock, epoch ms). */
export interface PresentedFrame {
  readonly rtpTimestamp: number;
  readonly presentedAtMs: number;
}

export interface FrameTimesOptions {
  /** Frames older than this (by capture time) are forgotten. Default 10 s. */
  readonly windowMs?: number;
  /** At most this many frames are kept. Default 2048 (10 s at 200 fps). */
  readonly capacity?: number;
}

/** The recent frames of one phone, capture time by RTP timestamp. */
export class FrameTimes {
  readonly #windowMs: number;
  readonly #capacity: number;
  /** Insertion order is capture order: the oldest come first. */
  readonly #frames = new Map<number, number>();

  constructor({ windowMs = 10_000, capacity = 2048 }: FrameTimesOptions = {}) {
    this.#windowMs = windowMs;
    this.#capacity = capacity;
  }

  add({ rtpTimestamp, captureTimeMs }: FrameTiming): void {
    const key = rtpTimestamp >>> 0;
    this.#frames.delete(key);
    this.#frames.set(key, captureTimeMs);
    for (const [oldest, at] of this.#frames) {
      if (this.#frames.size <= this.#capacity && at >= captureTimeMs - this.#windowMs) break;
      this.#frames.delete(oldest);
    }
  }

  captureTime(rtpTimestamp: number): number | undefined {
    return this.#frames.get(rtpTimestamp >>> 0);
  }

  get size(): number {
    return this.#frames.size;
  }
}

/** A round longer than this says nothing useful about the offset. */
const MAX_CLOCK_RTT_MS = 10_000;

/**
 * The player's clock against the host's. For a round (t0, ts, t1) the host answered somewhere
 * between t0 and t1 on the player's clock, so offset = ts − (t0 + t1) / 2 with an error of at most
 * RTT / 2 (less when the two legs take as long). The round with the smallest RTT among the last
 * `keep` wins: queueing only ever lengthens a round, and forgetting old rounds follows a player
 * clock that is stepped or drifts.
 */
export class ClockOffset {
  readonly #keep: number;
  #rounds: { offsetMs: number; rttMs: number }[] = [];

  constructor(keep = 16) {
    this.#keep = keep;
  }

  /** Takes one round; returns false (and ignores it) when it cannot be right. */
  add({ t0, serverTimeMs, t1 }: ClockSample, hostNowMs: number = hostTimeMs()): boolean {
    const rttMs = t1 - t0;
    // The host's time must be one it gave out recently: a round from another clock is noise.
    if (rttMs < 0 || rttMs > MAX_CLOCK_RTT_MS) return false;
    if (serverTimeMs > hostNowMs + 1 || serverTimeMs < hostNowMs - 10 * 60_000) return false;
    this.#rounds.push({ offsetMs: serverTimeMs - (t0 + t1) / 2, rttMs });
    if (this.#rounds.length > this.#keep) this.#rounds.shift();
    return true;
  }

  #best(): { offsetMs: number; rttMs: number } | undefined {
    let best: { offsetMs: number; rttMs: number } | undefined;
    for (const round of this.#rounds) if (!best || round.rttMs <= best.rttMs) best = round;
    return best;
  }

  /** Host clock − player clock, ms; undefined before the first round. */
  get offsetMs(): number | undefined {
    return this.#best()?.offsetMs;
  }

  /** The RTT of the round the offset comes from (twice its worst-case error). */
  get rttMs(): number | undefined {
    return this.#best()?.rttMs;
  }
}

/** Why a presented frame gave no latency. */
export type LatencyMiss = 'unsynced' | 'unknown_frame' | 'implausible';

/** Glass-to-glass latencies above this are taken for a mismatch, not a measurement. */
const MAX_GLASS_TO_GLASS_MS = 60_000;

/** Each presented frame's glass-to-glass latency, ms, or why there is none; in the order given. */
export function glassToGlass(
  frames: readonly PresentedFrame[],
  clock: ClockOffset,
  times: FrameTimes,
): (number | LatencyMiss)[] {
  const offsetMs = clock.offsetMs;
  return frames.map(({ rtpTimestamp, presentedAtMs }) => {
    if (offsetMs === undefined) return 'unsynced';
    const captured = times.captureTime(rtpTimestamp);
    if (captured === undefined) return 'unknown_frame';
    const latency = presentedAtMs + offsetMs - captured;
    // Negative means the offset or the frame is wrong (the player cannot show a frame before it is
    // captured); keep it out of the figures rather than clamp it into them.
    if (latency < 0 || latency > MAX_GLASS_TO_GLASS_MS) return 'implausible';
    return latency;
  });
}

/**
 * Glass-to-glass latencies over a session's life, in 1 ms bins up to 2 s and one bin above: exact
 * enough for percentiles, and 8 KiB however long the session lasts.
 */
export class LatencyDigest {
  readonly #bins = new Uint32Array(2001);
  #count = 0;

  add(ms: number): void {
    this.#bins[Math.min(2000, Math.max(0, Math.round(ms)))]! += 1;
    this.#count++;
  }

  get count(): number {
    return this.#count;
  }

  /** Nearest-rank percentile, ms (2000 stands for "2 s or more"); 0 without samples. */
  percentile(p: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil(p * this.#count));
    let seen = 0;
    for (let ms = 0; ms < this.#bins.length; ms++) {
      seen += this.#bins[ms]!;
      if (seen >= rank) return ms;
    }
    return 2000;
  }
}
