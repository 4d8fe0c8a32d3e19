// The device-spec contract: what a phone's container may be made of. The control plane checks
// every spec it accepts against it, and the host agent checks every spec it is told to run, with
// this one function and these limits, so a spec the API takes never halts on a host as
// INVALID_SPEC and a field is named the same way on both sides (proto field paths).
import type * as agentv1 from './agent-v1.js';
import { GPU_MODES } from './spellings.js';

interface Range {
  readonly min: number;
  readonly max: number;
}

/**
 * Where the API and the agent used to disagree, the stricter rule of the two is kept (the API's
 * screen and value-length limits, the agent's resource maxima, ro.* keys and control characters):
 * a spec that passed only one side never became a running phone, so none is lost.
 */
export const DEVICE_SPEC_LIMITS = {
  imageRefMaxLength: 512,
  /** Millicores: 1024 cores at most. */
  vcpuMillicores: { min: 1, max: 1_024_000 },
  /** MiB: 1 TiB at most. */
  memoryMib: { min: 1, max: 1_048_576 },
  /** GiB: 64 TiB at most. */
  storageGib: { min: 1, max: 65_536 },
  screen: {
    widthPx: { min: 1, max: 8192 },
    heightPx: { min: 1, max: 8192 },
    dpi: { min: 60, max: 1000 },
    fps: { min: 1, max: 120 },
  },
  properties: {
    /** Each property is one argument on the container's command line: keep the line bounded. */
    maxCount: 64,
    /** The only properties Redroid takes as boot arguments. */
    keyPrefix: 'ro.',
    /** Letters, digits, ".", "_" and "-", at most 128 characters in all. */
    key: /^ro\.[A-Za-z0-9._-]{1,125}$/,
    /** Android's PROP_VALUE_MAX, in bytes of UTF-8. */
    maxValueBytes: 92,
  },
} as const satisfies {
  imageRefMaxLength: number;
  vcpuMillicores: Range;
  memoryMib: Range;
  storageGib: Range;
  screen: Record<'widthPx' | 'heightPx' | 'dpi' | 'fps', Range>;
  properties: object;
};

/** The screen of a spec that sets none (Redroid's own default). */
export const DEFAULT_SCREEN = Object.freeze({ widthPx: 720, heightPx: 1280, dpi: 320, fps: 30 });

/** The first thing wrong with a spec. */
export interface SpecViolation {
  /** Proto field path inside the spec, e.g. `screen.fps` or `properties["persist.sys.x"]`. */
  readonly field: string;
  /** The offending value; strings are cut to 100 characters, since errors echo it. */
  readonly value: string | number;
  readonly reason: string;
}

export interface DeviceSpecCheckOptions {
  /**
   * A spec whose zero and empty fields are unset (an image's default spec, to be completed later);
   * the fields that are set must still be valid. Default false: a spec to run, every field set.
   */
  readonly partial?: boolean;
}

// Each property is one argv entry of Android's init; a control character would split or corrupt it.
const CONTROL = /\p{Cc}/u;
const IMAGE_REF_FORBIDDEN = /[\s\p{Cc}]/u;
const ECHO_MAX = 100;
const utf8 = new TextEncoder();

/** The first violation of the contract in `spec`, or undefined when it holds. Pure. */
export function deviceSpecViolation(
  spec: agentv1.DeviceSpec,
  { partial = false }: DeviceSpecCheckOptions = {},
): SpecViolation | undefined {
  const L = DEVICE_SPEC_LIMITS;
  if (!(partial && spec.imageRef === '')) {
    if (
      spec.imageRef.length === 0 ||
      spec.imageRef.length > L.imageRefMaxLength ||
      IMAGE_REF_FORBIDDEN.test(spec.imageRef)
    ) {
      return violation(
        'image_ref',
        spec.imageRef,
        `must be a container image reference: 1..${L.imageRefMaxLength} characters, no whitespace`,
      );
    }
  }
  const ranged =
    range('vcpu_millicores', spec.vcpuMillicores, L.vcpuMillicores, partial) ??
    range('memory_mib', spec.memoryMib, L.memoryMib, partial) ??
    range('storage_gib', spec.storageGib, L.storageGib, partial) ??
    range('screen.width_px', spec.screen?.widthPx ?? 0, L.screen.widthPx, partial) ??
    range('screen.height_px', spec.screen?.heightPx ?? 0, L.screen.heightPx, partial) ??
    range('screen.dpi', spec.screen?.dpi ?? 0, L.screen.dpi, partial) ??
    range('screen.fps', spec.screen?.fps ?? 0, L.screen.fps, partial);
  if (ranged) return ranged;
  if (GPU_MODES.name(spec.gpuMode) === undefined) {
    return violation('gpu_mode', spec.gpuMode, `must be one of ${GPU_MODES.names.join(', ')}`);
  }
  return propertiesViolation(spec.properties);
}

function propertiesViolation(properties: Readonly<Record<string, string>>): SpecViolation | undefined {
  const P = DEVICE_SPEC_LIMITS.properties;
  const keys = Object.keys(properties).sort();
  if (keys.length > P.maxCount) {
    return violation('properties', keys.length, `must hold at most ${P.maxCount} properties`);
  }
  for (const key of keys) {
    const field = `properties[${JSON.stringify(key)}]`;
    if (!key.startsWith(P.keyPrefix)) {
      return violation(
        field,
        key,
        `keys must start with "${P.keyPrefix}": Redroid sets no other property at boot`,
      );
    }
    if (!P.key.test(key)) {
      return violation(
        field,
        key,
        'keys must be at most 128 characters of letters, digits, ".", "_" and "-"',
      );
    }
    const value = properties[key] ?? '';
    if (utf8.encode(value).length > P.maxValueBytes) {
      return violation(field, value, `must be at most ${P.maxValueBytes} bytes of UTF-8`);
    }
    if (CONTROL.test(value)) return violation(field, value, 'must not contain control characters');
  }
  return undefined;
}

function range(
  field: string,
  value: number,
  { min, max }: Range,
  partial: boolean,
): SpecViolation | undefined {
  if (partial && value === 0) return undefined;
  if (Number.isInteger(value) && value >= min && value <= max) return undefined;
  return violation(field, value, `must be an integer in ${min}..${max}`);
}

function violation(field: string, value: string | number, reason: string): SpecViolation {
  const echoed =
    typeof value === 'string' && value.length > ECHO_MAX ? `${value.slice(0, ECHO_MAX)}…` : value;
  return { field, value: echoed, reason };
}
