import { create, fromJson, type JsonValue, toJson } from '@bufbuild/protobuf';
import {
  DEFAULT_SCREEN,
  type DeviceSpec,
  DeviceSpecSchema,
  deviceSpecViolation,
  GpuMode,
  ScreenSpecSchema,
  type SpecViolation,
  toAgentDeviceSpec,
} from '@cphone/proto';
import type { Selectable } from 'kysely';
import { InvalidArgumentError } from '../errors.js';
import type { Resources } from '../scheduler/index.js';
import type { ImageTable } from '../store/schema.js';

export type ImageRow = Selectable<ImageTable>;

export function defaultSpecOf(image: Pick<ImageRow, 'default_spec'>): DeviceSpec {
  return fromJson(DeviceSpecSchema, image.default_spec as JsonValue, { ignoreUnknownFields: true });
}

export function specToJson(spec: DeviceSpec): Record<string, unknown> {
  return toJson(DeviceSpecSchema, spec) as Record<string, unknown>;
}

/** A contract violation as the API's error; `field` is the spec's path, e.g. `requests[3].spec`. */
function check(field: string, violation: SpecViolation | undefined): void {
  if (violation)
    throw new InvalidArgumentError(`${field}.${violation.field}`, violation.value, violation.reason);
}

/** A spec to be completed later (an image's default spec): zero is unset, set fields hold the contract. */
export function checkPartialSpec(field: string, spec: DeviceSpec): void {
  check(field, deviceSpecViolation(toAgentDeviceSpec(spec), { partial: true }));
}

/** Image minimums must not be negative. */
export function checkNonNegative(field: string, value: number): void {
  if (!Number.isInteger(value) || value < 0) throw new InvalidArgumentError(field, value, 'must be >= 0');
}

export interface ResolvedSpec {
  readonly spec: DeviceSpec;
  readonly resources: Omit<Resources, 'devices'>;
}

/**
 * How a device's spec is resolved from a create request and its image:
 * - a field left zero or unset takes the image's default_spec value (GpuMode and the screen field
 *   by field; properties are merged, the request's winning);
 * - a screen field still unset takes the built-in default (720 x 1280, 320 dpi, 30 fps), so an image
 *   need not carry one;
 * - image_ref is the image's container image unless an operator names another (drafts.ts refuses
 *   it from anyone else), so a device keeps the container image it was created with when the image
 *   later changes (the proto: running devices are not affected);
 * - the result must hold the device-spec contract of @cphone/proto, checked on the very message the
 *   agent will be sent, which the agent checks again with the same function: a spec accepted here
 *   never halts as INVALID_SPEC on a host, and an error names the field the agent would;
 * - resources must also be at least the image's minimums.
 *
 * `field` is the spec's path, e.g. `requests[3].spec`.
 */
export function resolveSpec(field: string, requested: DeviceSpec | undefined, image: ImageRow): ResolvedSpec {
  const defaults = defaultSpecOf(image);
  const resource = (name: 'vcpuMillicores' | 'memoryMib' | 'storageGib'): number => {
    const value = requested?.[name] || defaults[name];
    if (value === 0) {
      throw new InvalidArgumentError(
        `${field}.${snake(name)}`,
        0,
        `must be > 0 (image ${JSON.stringify(image.id)} sets no default)`,
      );
    }
    return value;
  };
  const vcpuMillicores = resource('vcpuMillicores');
  const memoryMib = resource('memoryMib');
  const storageGib = resource('storageGib');
  const spec = create(DeviceSpecSchema, {
    imageId: image.id,
    imageRef: requested?.imageRef || image.image_ref,
    vcpuMillicores,
    memoryMib,
    storageGib,
    screen: create(ScreenSpecSchema, {
      widthPx: requested?.screen?.widthPx || defaults.screen?.widthPx || DEFAULT_SCREEN.widthPx,
      heightPx: requested?.screen?.heightPx || defaults.screen?.heightPx || DEFAULT_SCREEN.heightPx,
      dpi: requested?.screen?.dpi || defaults.screen?.dpi || DEFAULT_SCREEN.dpi,
      fps: requested?.screen?.fps || defaults.screen?.fps || DEFAULT_SCREEN.fps,
    }),
    gpuMode: requested?.gpuMode || defaults.gpuMode || GpuMode.GUEST,
    properties: { ...defaults.properties, ...requested?.properties },
  });
  check(field, deviceSpecViolation(toAgentDeviceSpec(spec)));
  const minimums = [
    ['vcpuMillicores', image.min_vcpu_millicores],
    ['memoryMib', image.min_memory_mib],
    ['storageGib', image.min_storage_gib],
  ] as const;
  for (const [name, min] of minimums) {
    if (spec[name] < min) {
      throw new InvalidArgumentError(
        `${field}.${snake(name)}`,
        spec[name],
        `must be at least image ${JSON.stringify(image.id)}'s minimum ${min}`,
      );
    }
  }
  return { spec, resources: { vcpuMillicores, memoryMib, storageGib } };
}

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
