import { create, fromJson, type JsonValue, toJson } from '@bufbuild/protobuf';
import { type DeviceSpec, DeviceSpecSchema, GpuMode, type ScreenSpec, ScreenSpecSchema } from '@cphone/proto';
import type { Selectable } from 'kysely';
import { InvalidArgumentError } from '../errors.js';
import type { Resources } from '../scheduler/index.js';
import type { ImageTable } from '../store/schema.js';

/**
 * How a device's spec is resolved from a create request and its image:
 * - a field left zero or unset takes the image's default_spec value (GpuMode and the screen field
 *   by field; properties are merged, the request's winning);
 * - resources must then be > 0 and at least the image's minimums; a negative request value is
 *   refused outright rather than replaced by the default;
 * - a screen field still unset takes the built-in default (720 x 1280, 320 dpi, 30 fps), so an image
 *   need not carry one;
 * - image_ref defaults to the image's container image, so a device keeps the container image it was
 *   created with when the image later changes (the proto: running devices are not affected).
 */
export const DEFAULT_SCREEN = { widthPx: 720, heightPx: 1280, dpi: 320, fps: 30 } as const;

export const SCREEN_LIMITS = {
  widthPx: [1, 8192],
  heightPx: [1, 8192],
  dpi: [60, 1000],
  fps: [1, 120],
} as const;

const PROPERTY_PREFIXES = ['ro.', 'persist.'];
const PROPERTY_KEY = /^[A-Za-z0-9._-]{1,128}$/;

export type ImageRow = Selectable<ImageTable>;

export function defaultSpecOf(image: Pick<ImageRow, 'default_spec'>): DeviceSpec {
  return fromJson(DeviceSpecSchema, image.default_spec as JsonValue, { ignoreUnknownFields: true });
}

export function specToJson(spec: DeviceSpec): Record<string, unknown> {
  return toJson(DeviceSpecSchema, spec) as Record<string, unknown>;
}

/** Screen fields that are set must be in range; `field` is the screen's path. */
export function checkScreen(field: string, screen: ScreenSpec | undefined, requireAll: boolean): void {
  for (const [name, [min, max]] of Object.entries(SCREEN_LIMITS) as [
    keyof typeof SCREEN_LIMITS,
    readonly [number, number],
  ][]) {
    const value = screen?.[name] ?? 0;
    if (value === 0 && !requireAll) continue;
    if (value < min || value > max) {
      throw new InvalidArgumentError(`${field}.${snake(name)}`, value, `must be in ${min}..${max}`);
    }
  }
}

export function checkProperties(field: string, properties: Readonly<Record<string, string>>): void {
  for (const [key, value] of Object.entries(properties)) {
    if (!PROPERTY_KEY.test(key) || !PROPERTY_PREFIXES.some((p) => key.startsWith(p))) {
      throw new InvalidArgumentError(
        `${field}["${key}"]`,
        key,
        `keys must start with ${PROPERTY_PREFIXES.map((p) => `"${p}"`).join(' or ')} and use letters, digits, ".", "_", "-"`,
      );
    }
    if (value.length > 92)
      throw new InvalidArgumentError(`${field}["${key}"]`, value, 'must be at most 92 characters');
  }
}

/** Resource fields that are set must not be negative (used for image defaults and minimums too). */
export function checkNonNegative(field: string, value: number): void {
  if (!Number.isInteger(value) || value < 0) throw new InvalidArgumentError(field, value, 'must be >= 0');
}

export interface ResolvedSpec {
  readonly spec: DeviceSpec;
  readonly resources: Omit<Resources, 'devices'>;
}

/** Applies the rules above; `field` is the spec's path, e.g. `requests[3].spec`. */
export function resolveSpec(field: string, requested: DeviceSpec | undefined, image: ImageRow): ResolvedSpec {
  const defaults = defaultSpecOf(image);
  const resource = (name: 'vcpuMillicores' | 'memoryMib' | 'storageGib', min: number): number => {
    const asked = requested?.[name] ?? 0;
    const path = `${field}.${snake(name)}`;
    if (asked < 0) throw new InvalidArgumentError(path, asked, 'must be > 0');
    const value = asked || defaults[name];
    if (value <= 0) {
      throw new InvalidArgumentError(
        path,
        asked,
        `must be > 0 (image ${JSON.stringify(image.id)} sets no default)`,
      );
    }
    if (value < min) {
      throw new InvalidArgumentError(
        path,
        value,
        `must be at least image ${JSON.stringify(image.id)}'s minimum ${min}`,
      );
    }
    return value;
  };
  const vcpuMillicores = resource('vcpuMillicores', image.min_vcpu_millicores);
  const memoryMib = resource('memoryMib', image.min_memory_mib);
  const storageGib = resource('storageGib', image.min_storage_gib);
  checkScreen(`${field}.screen`, requested?.screen, false);
  const screen = create(ScreenSpecSchema, {
    widthPx: requested?.screen?.widthPx || defaults.screen?.widthPx || DEFAULT_SCREEN.widthPx,
    heightPx: requested?.screen?.heightPx || defaults.screen?.heightPx || DEFAULT_SCREEN.heightPx,
    dpi: requested?.screen?.dpi || defaults.screen?.dpi || DEFAULT_SCREEN.dpi,
    fps: requested?.screen?.fps || defaults.screen?.fps || DEFAULT_SCREEN.fps,
  });
  checkScreen(`${field}.screen`, screen, true);
  const properties = { ...defaults.properties, ...requested?.properties };
  checkProperties(`${field}.properties`, requested?.properties ?? {});
  const gpuMode = requested?.gpuMode || defaults.gpuMode || GpuMode.GUEST;
  if (!(gpuMode in GpuMode)) throw new InvalidArgumentError(`${field}.gpu_mode`, gpuMode, 'is not a GpuMode');
  const imageRef = requested?.imageRef || image.image_ref;
  if (/\s/.test(imageRef) || imageRef.length > 512) {
    throw new InvalidArgumentError(`${field}.image_ref`, imageRef, 'must be a container image reference');
  }
  const spec = create(DeviceSpecSchema, {
    imageId: image.id,
    imageRef,
    vcpuMillicores,
    memoryMib,
    storageGib,
    screen,
    gpuMode,
    properties,
  });
  return { spec, resources: { vcpuMillicores, memoryMib, storageGib } };
}

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
