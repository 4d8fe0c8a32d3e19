// Adaptive quality: the phone's H.264 goes to every viewer as it left the encoder (no transcoding,
// no simulcast), so the only rate control there is is the encoder itself. This decides its bit
// rate, size and frame rate from what the sfu learns about each viewer's link; ScreenIngest's
// reconfigure applies a decision. Pure: time comes from the injected clock, nothing is scheduled.
import type { StreamRightsName } from '@cphone/proto';
import { DEFAULT_CAPTURE } from '../screen/index.js';
import {
  type CaptureTarget,
  type FixedPreset,
  ladderFor,
  narrowest,
  type QualityPreset,
  type Rung,
  rungFor,
  rungOf,
} from './quality-ladder.js';

export type { CaptureTarget, FixedPreset, QualityPreset, Rung } from './quality-ladder.js';
export { ladderFor, RUNGS } from './quality-ladder.js';

/** One look at a viewer's link, as mediasoup's stats give it (about once a second). */
export interface LinkReport {
  /**
   * What the sfu may send this viewer, bits/s: the WebRtcTransport's `availableOutgoingBitrate`
   * (its transport-cc bandwidth estimate, or the viewer's REMB).
   */
  readonly availableBitrate: number;
  /** Fraction of packets lost, 0 to 1: the consumer's RTCP receiver reports (`fractionLost` / 256). */
  readonly lossFraction: number;
  /**
   * What the sfu sent this viewer, bits/s (transport `sendBitrate`). Optional; with it, an
   * estimate the stream never tested (a still screen sends little, and the estimate only grows
   * with what is sent) is not read as a narrow link.
   */
  readonly sendBitrate?: number;
}

export interface ViewerQuality {
  /** A viewer with control drives the phone: its link is the one the encoder follows. */
  readonly rights: StreamRightsName;
  readonly preset: QualityPreset;
}

/** Why the capture changes. */
export type QualityCause = 'bandwidth' | 'loss' | 'recovered' | 'preset';

export interface QualityChange {
  /** Pass to ScreenIngest.reconfigure. */
  readonly capture: CaptureTarget;
  readonly rung: string;
  readonly cause: QualityCause;
  /** The viewer whose link decided it, for a step down. */
  readonly viewer?: string;
}

export interface QualityControllerOptions {
  /** Monotonic milliseconds. Default performance.now. */
  readonly now?: () => number;
  /** What the ingest captures with at first. Default its DEFAULT_CAPTURE: 1280, 30 fps, 2 Mbit/s. */
  readonly initial?: CaptureTarget;
  /** The largest size worth asking for (the phone's display). Default '1080p'. */
  readonly ceiling?: FixedPreset;
  /** Share of an estimate the video may use (RTP and SRTP headers, retransmissions). Default 0.9. */
  readonly headroom?: number;
  /** Taken off every estimate for the audio: Opus at 64 kbit/s and its packets' headers. Default 80 kbit/s. */
  readonly reservedBitrate?: number;
  /** The least video bit rate asked for. Default 100 kbit/s. */
  readonly minBitRate?: number;
  /**
   * Step down when a viewer's video budget stays below this share of the bit rate. Default 0.8:
   * with `upMargin` a band of ±20 % around the bit rate that a GCC estimate's ±15 % swing
   * (its sawtooth on a full link) does not cross.
   */
  readonly downBelow?: number;
  /** Loss at or above this, sustained, steps down. Default 0.05. */
  readonly lossDown?: number;
  /** Loss at or above this holds any step up. Default 0.02. */
  readonly lossHold?: number;
  /** How long a reason to step down must last. Default 2000 ms (three reports a second apart). */
  readonly downAfterMs?: number;
  /** Step up once every viewer's budget stayed this share above the bit rate ... Default 0.2. */
  readonly upMargin?: number;
  /** ... for this long, with no loss. Default 8000 ms. */
  readonly upAfterMs?: number;
  /** A step up at most multiplies the bit rate by this. Default 2. */
  readonly maxUpRatio?: number;
  /** Least time between two changes: each restarts the encoder and costs a key frame. Default 3000 ms. */
  readonly minDwellMs?: number;
  /**
   * A viewer's first seconds: its estimate starts at the transport's initial value and ramps up
   * by probing, so it is no reason to step down yet (its loss is). Default 5000 ms.
   */
  readonly warmupMs?: number;
  /** Reports older than this are forgotten (a viewer whose stats stopped). Default 10000 ms. */
  readonly keepMs?: number;
}

interface Sample {
  readonly at: number;
  /** What the video may use on this link, bits/s. */
  readonly budget: number;
  readonly loss: number;
  /** What was sent, bits/s, when the sfu said. */
  readonly sent: number | undefined;
  /** The estimate can be believed as a ceiling: past warm-up, and tested by what was sent. */
  readonly tested: boolean;
}

interface Viewer extends ViewerQuality {
  samples: Sample[];
  firstAt: number | undefined;
}

/** An estimate the sfu sends less than this share of has not been tested by the stream. */
const TESTED_SHARE = 0.5;
/** A viewer whose newest report is older than this (its stats stopped) decides nothing new. */
const STALE_MS = 3000;
const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Decides the phone's capture settings from its viewers' links.
 *
 * Whose link: the viewers with control (the one driving the phone feels every stall); view-only
 * viewers count only when nobody has control. One encoder feeds everyone, so a spectator on a
 * slower link than the controller's stalls (and recovers by key frames) rather than dragging the
 * controller's picture down. Presets: the narrowest fixed preset of those viewers holds the size
 * and caps the bit rate; 'auto' lets the ladder choose.
 *
 * How: down fast, up slowly, never for noise. Down when, for `downAfterMs`, every report of one
 * viewer put its budget (estimate × headroom − audio) below `downBelow` of the bit rate (to the
 * mean of those reports), or showed loss ≥ `lossDown` (by the loss, 15 to 50 %, and to what got
 * through when the sent rate is known; loss a step did not reduce is not followed). Up when, for
 * `upAfterMs`, every report of every viewer had room `upMargin` above it and loss under
 * `lossHold` (to the least of those budgets, at most `maxUpRatio` times). Only reports since the
 * last change count, and changes are `minDwellMs` apart; a preset change applies at once. The
 * bit rate picks the rung: the best size and rate whose floor it reaches (a rung above needs 20 %
 * more), then is capped by that rung. `evaluate()` returns only changes.
 */
export class QualityController {
  readonly #now: () => number;
  readonly #ceiling: FixedPreset;
  readonly #o: Required<Omit<QualityControllerOptions, 'now' | 'initial' | 'ceiling'>>;
  readonly #viewers = new Map<string, Viewer>();
  #rung: Rung;
  #capture: CaptureTarget;
  #ladder: readonly Rung[];
  #lastChangeAt = Number.NEGATIVE_INFINITY;
  /** The loss a step down for loss answered, while that loss lasts. */
  #lossStepped: number | undefined;

  constructor({
    now = () => performance.now(),
    initial = {
      maxSize: DEFAULT_CAPTURE.maxSize,
      maxFps: DEFAULT_CAPTURE.maxFps,
      videoBitRate: DEFAULT_CAPTURE.videoBitRate,
    },
    ceiling = '1080p',
    headroom = 0.9,
    reservedBitrate = 80_000,
    minBitRate = 100_000,
    downBelow = 0.8,
    lossDown = 0.05,
    lossHold = 0.02,
    downAfterMs = 2000,
    upMargin = 0.2,
    upAfterMs = 8000,
    maxUpRatio = 2,
    minDwellMs = 3000,
    warmupMs = 5000,
    keepMs = 10_000,
  }: QualityControllerOptions = {}) {
    this.#now = now;
    this.#ceiling = ceiling;
    this.#o = {
      headroom,
      reservedBitrate,
      minBitRate,
      downBelow,
      lossDown,
      lossHold,
      downAfterMs,
      upMargin,
      upAfterMs,
      maxUpRatio,
      minDwellMs,
      warmupMs,
      keepMs: Math.max(keepMs, upAfterMs + 2000),
    };
    this.#capture = { ...initial };
    this.#rung = rungOf(initial);
    this.#ladder = ladderFor('auto', ceiling);
  }

  /** What the phone is asked to capture now (the last change returned, or the initial settings). */
  get capture(): CaptureTarget {
    return this.#capture;
  }

  get rung(): string {
    return this.#rung.name;
  }

  /** A viewer joined, or changed its preset. */
  setViewer(id: string, viewer: ViewerQuality): void {
    const known = this.#viewers.get(id);
    this.#viewers.set(id, { ...viewer, samples: known?.samples ?? [], firstAt: known?.firstAt });
  }

  removeViewer(id: string): void {
    this.#viewers.delete(id);
  }

  /** A look at one viewer's link; ignored for a viewer not set. */
  report(id: string, link: LinkReport): void {
    const viewer = this.#viewers.get(id);
    if (!viewer) return;
    const at = this.#now();
    viewer.firstAt ??= at;
    const { headroom, reservedBitrate, warmupMs } = this.#o;
    const tested =
      at - viewer.firstAt >= warmupMs &&
      (link.sendBitrate === undefined || link.sendBitrate >= TESTED_SHARE * link.availableBitrate);
    viewer.samples.push({
      at,
      budget: Math.max(0, link.availableBitrate * headroom - reservedBitrate),
      loss: Math.min(1, Math.max(0, link.lossFraction)),
      sent: link.sendBitrate,
      tested,
    });
  }

  /** The change to make now, if any. Call after reports, and from a timer (a step up needs no report). */
  evaluate(): QualityChange | undefined {
    const now = this.#now();
    for (const v of this.#viewers.values()) {
      const keepFrom = now - this.#o.keepMs;
      if (v.samples[0] && v.samples[0].at < keepFrom) v.samples = v.samples.filter((s) => s.at >= keepFrom);
    }
    const deciding = this.#deciding();
    if (!deciding.some((v) => (v.samples.at(-1)?.loss ?? 0) >= this.#o.lossDown))
      this.#lossStepped = undefined;
    const ladder = ladderFor(narrowest(deciding.map((v) => v.preset)), this.#ceiling);
    if (ladder.map((r) => r.name).join() !== this.#ladder.map((r) => r.name).join()) {
      this.#ladder = ladder;
      return this.#change(this.#capture.videoBitRate, 'preset', now);
    }
    if (now - this.#lastChangeAt < this.#o.minDwellMs) return undefined;
    const down = this.#down(deciding, now);
    if (down) {
      const change = this.#change(down.bitRate, down.cause, now, down.viewer);
      if (change) this.#lossStepped = down.loss;
      return change;
    }
    const up = this.#up(deciding, now);
    return up === undefined ? undefined : this.#change(up, 'recovered', now);
  }

  /** The viewers whose links and presets decide: those with control, else everyone. */
  #deciding(): (Viewer & { id: string })[] {
    const all = [...this.#viewers].map(([id, v]) => ({ ...v, id }));
    const control = all.filter((v) => v.rights === 'control');
    return control.length > 0 ? control : all;
  }

  /** The lowest bit rate some viewer's sustained trouble calls for. */
  #down(
    viewers: readonly (Viewer & { id: string })[],
    now: number,
  ): { bitRate: number; cause: QualityCause; viewer: string; loss?: number } | undefined {
    const current = this.#capture.videoBitRate;
    const { downBelow, lossDown, downAfterMs, headroom, reservedBitrate } = this.#o;
    let best: { bitRate: number; cause: QualityCause; viewer: string; loss?: number } | undefined;
    for (const v of viewers) {
      const narrow = this.#run(v, now, (s) => s.tested && s.budget < current * downBelow);
      if (narrow && now - narrow[0]!.at >= downAfterMs) {
        const recent = narrow.filter((s) => s.at >= now - downAfterMs);
        const bitRate = mean(recent.map((s) => s.budget));
        if (!best || bitRate < best.bitRate) best = { bitRate, cause: 'bandwidth', viewer: v.id };
      }
      const lossy = this.#run(v, now, (s) => s.loss >= lossDown);
      if (lossy && now - lossy[0]!.at >= downAfterMs) {
        const recent = lossy.filter((s) => s.at >= now - downAfterMs);
        const loss = mean(recent.map((s) => s.loss));
        // Loss a step down did not reduce is the path's own (a lossy radio), not congestion:
        // stepping on would only starve the picture.
        if (this.#lossStepped !== undefined && loss > this.#lossStepped * 0.75) continue;
        let bitRate = current * Math.min(0.85, Math.max(0.5, 1 - loss));
        // What got through, when the sfu says what it sent: an overloaded link's real rate.
        const sent = recent.every((s) => s.sent !== undefined) ? mean(recent.map((s) => s.sent!)) : undefined;
        if (sent !== undefined) bitRate = Math.min(bitRate, sent * (1 - loss) * headroom - reservedBitrate);
        if (!best || bitRate < best.bitRate) best = { bitRate, cause: 'loss', viewer: v.id, loss };
      }
    }
    return best;
  }

  /** The bit rate every viewer has had room for, with no loss, for upAfterMs; undefined if not. */
  #up(viewers: readonly Viewer[], now: number): number | undefined {
    const current = this.#capture.videoBitRate;
    const { upMargin, lossHold, upAfterMs, maxUpRatio } = this.#o;
    let room = current * maxUpRatio;
    let reported = false;
    for (const v of viewers) {
      if (v.samples.length === 0) continue;
      reported = true;
      const run = this.#run(v, now, (s) => s.budget >= current * (1 + upMargin) && s.loss < lossHold);
      if (!run || now - run[0]!.at < upAfterMs) return undefined;
      room = Math.min(room, ...run.filter((s) => s.at >= now - upAfterMs).map((s) => s.budget));
    }
    return reported ? room : undefined;
  }

  /**
   * The newest reports of a viewer since the last change that all meet `holds`, oldest first;
   * undefined when the newest does not, or is stale.
   */
  #run(viewer: Viewer, now: number, holds: (s: Sample) => boolean): Sample[] | undefined {
    const { samples } = viewer;
    let i = samples.length;
    // A report from the instant of a change still saw the old settings.
    while (i > 0 && samples[i - 1]!.at > this.#lastChangeAt && holds(samples[i - 1]!)) i--;
    if (i === samples.length || samples.at(-1)!.at < now - STALE_MS) return undefined;
    return samples.slice(i);
  }

  /** The capture for `bitRate` on the ladder in force; returned (and kept) if it differs. */
  #change(bitRate: number, cause: QualityCause, now: number, viewer?: string): QualityChange | undefined {
    const ladder = this.#ladder;
    const wanted = Math.max(this.#o.minBitRate, bitRate);
    const rung = rungFor(ladder, wanted, this.#rung, 0.2);
    const capped = Math.min(wanted, rung.maxBitRate);
    // Whole 10 kbit/s, rounded down: the budget is a ceiling.
    const capture = {
      maxSize: rung.maxSize,
      maxFps: rung.maxFps,
      videoBitRate: Math.floor(capped / 10_000) * 10_000,
    };
    const same =
      capture.maxSize === this.#capture.maxSize &&
      capture.maxFps === this.#capture.maxFps &&
      capture.videoBitRate === this.#capture.videoBitRate;
    if (same) return undefined;
    this.#capture = capture;
    this.#rung = rung;
    this.#lastChangeAt = now;
    if (cause !== 'loss') this.#lossStepped = undefined;
    return { capture, rung: rung.name, cause, ...(viewer === undefined ? {} : { viewer }) };
  }
}
