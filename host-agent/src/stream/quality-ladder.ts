// The sizes and frame rates the phone may be asked to capture at, and the bit rates each suits.
import type { QualityPreset } from '@cphone/sfu';
import type { CaptureSettings } from '../screen/index.js';

/** What a viewer asks for (the sfu's `join` and `setQuality`): the controller's choice, or one size held whatever the link. */
export type { QualityPreset };
export type FixedPreset = Exclude<QualityPreset, 'auto'>;

/** The capture settings quality decides; the rest of CaptureSettings stays as the ingest has it. */
export type CaptureTarget = Pick<CaptureSettings, 'maxSize' | 'maxFps' | 'videoBitRate'>;

/** One step of a ladder: a size and rate, and the bit rates that suit them. */
export interface Rung {
  readonly name: string;
  /** Longest side of the video (scrcpy's max_size, a multiple of 8). */
  readonly maxSize: number;
  readonly maxFps: number;
  /** Below this the picture breaks up at this size and rate: the next rung down looks better. */
  readonly minBitRate: number;
  /** More than this buys nothing visible at this size and rate. */
  readonly maxBitRate: number;
}

// H.264 Baseline of a phone's screen. The floors follow libwebrtc's table of the bit rate a
// resolution needs to start at (EncoderInfoSettings::GetDefaultSinglecastBitrateLimits: 720p from
// 900 kbit/s, 540p from 500, 360p from 300), between which 480p sits; the caps are where more bits
// stop showing on UI content. 480p is 848 long: scrcpy rounds max_size down to a multiple of 8.
const rung = (name: string, maxSize: number, maxFps: number, minKbps: number, maxKbps: number): Rung => ({
  name,
  maxSize,
  maxFps,
  minBitRate: minKbps * 1000,
  maxBitRate: maxKbps * 1000,
});

export const RUNGS = {
  '1080p30': rung('1080p30', 1920, 30, 1800, 4000),
  '1080p15': rung('1080p15', 1920, 15, 900, 2500),
  '720p30': rung('720p30', 1280, 30, 900, 2500),
  '720p15': rung('720p15', 1280, 15, 450, 1500),
  '480p30': rung('480p30', 848, 30, 400, 1200),
  '480p15': rung('480p15', 848, 15, 150, 700),
} as const satisfies Record<string, Rung>;

/** Size first, then frame rate: a sharp picture at 15 fps reads better than a blurred one at 30. */
const AUTO: readonly Rung[] = [RUNGS['1080p30'], RUNGS['720p30'], RUNGS['480p30'], RUNGS['480p15']];
const FIXED: Record<FixedPreset, readonly Rung[]> = {
  '1080p': [RUNGS['1080p30'], RUNGS['1080p15']],
  '720p': [RUNGS['720p30'], RUNGS['720p15']],
  '480p': [RUNGS['480p30'], RUNGS['480p15']],
};
const SIZE_ORDER: readonly FixedPreset[] = ['1080p', '720p', '480p'];

/**
 * The rungs a preset allows, best first: 'auto' steps through sizes down to 480p and then to
 * 15 fps; a fixed size keeps its size and only drops to 15 fps. `ceiling` is the largest size
 * worth asking for (a 720x1280 phone gains nothing from 1080p); a fixed preset above it is held
 * at it.
 */
export function ladderFor(preset: QualityPreset, ceiling: FixedPreset): readonly Rung[] {
  const top = SIZE_ORDER.indexOf(ceiling);
  if (preset === 'auto') return AUTO.filter((r) => r.maxSize <= FIXED[ceiling][0]!.maxSize);
  return FIXED[SIZE_ORDER[Math.max(top, SIZE_ORDER.indexOf(preset))]!];
}

/** The most restrictive of several presets (the smallest fixed size), 'auto' when none is fixed. */
export function narrowest(presets: Iterable<QualityPreset>): QualityPreset {
  let out: QualityPreset = 'auto';
  for (const p of presets) {
    if (p !== 'auto' && (out === 'auto' || SIZE_ORDER.indexOf(p) > SIZE_ORDER.indexOf(out))) out = p;
  }
  return out;
}

/**
 * The rung for a bit rate: the best one whose floor it reaches. Climbing above `current` needs
 * `upMargin` more than the floor, so a rate hovering at a floor does not switch sizes back and
 * forth.
 */
export function rungFor(ladder: readonly Rung[], bitRate: number, current: Rung, upMargin: number): Rung {
  const at = ladder.indexOf(current);
  for (const [i, r] of ladder.entries()) {
    const above = at === -1 ? r.maxSize > current.maxSize || r.maxFps > current.maxFps : i < at;
    if (bitRate >= r.minBitRate * (above ? 1 + upMargin : 1)) return r;
  }
  return ladder.at(-1)!;
}

/** The rung that captures as `capture` does (the ingest's first settings), or the nearest above. */
export function rungOf(capture: CaptureTarget): Rung {
  const all = Object.values(RUNGS);
  return (
    all.find((r) => r.maxSize === capture.maxSize && r.maxFps === capture.maxFps) ??
    all.findLast((r) => r.maxSize >= capture.maxSize && r.maxFps >= capture.maxFps) ??
    RUNGS['1080p30']
  );
}
