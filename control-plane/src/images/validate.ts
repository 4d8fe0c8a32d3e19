import { create } from '@bufbuild/protobuf';
import { type DeviceSpec, DeviceSpecSchema, type Image, ImageState } from '@cphone/proto';
import { checkNonNegative, checkPartialSpec, specToJson } from '../devices/spec.js';
import { InvalidArgumentError } from '../errors.js';
import { ARCHES, type Arch } from '../scheduler/index.js';
import type { ImageTable } from '../store/schema.js';

export const IMAGE_ID = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;

/** The columns UpdateImage may change, by update_mask path. */
export const IMAGE_MASK_PATHS = [
  'display_name',
  'container_image',
  'android_version',
  'sdk_level',
  'archs',
  'default_spec',
  'min_vcpu_millicores',
  'min_memory_mib',
  'min_storage_gib',
  'state',
  'labels',
] as const;
export type ImageMaskPath = (typeof IMAGE_MASK_PATHS)[number];

type ImageColumns = Pick<
  ImageTable,
  | 'display_name'
  | 'image_ref'
  | 'android_version'
  | 'min_vcpu_millicores'
  | 'min_memory_mib'
  | 'min_storage_gib'
>;

export interface ImageValues extends ImageColumns {
  sdk_level: number;
  arches: string;
  default_spec: string;
  labels: string;
  state: 'active' | 'deprecated';
}

export function checkImageId(id: string): void {
  if (!IMAGE_ID.test(id)) {
    throw new InvalidArgumentError(
      'image_id',
      id,
      'must be 3..63 lowercase letters, digits or "-", not starting or ending with "-"',
    );
  }
}

export function checkLabels(field: string, labels: Readonly<Record<string, string>>): void {
  for (const [key, value] of Object.entries(labels)) {
    if (!LABEL_KEY.test(key)) {
      throw new InvalidArgumentError(
        `${field}["${key}"]`,
        key,
        'keys must be 1..63 letters, digits, ".", "_", "/", "-"',
      );
    }
    if (value.length > 63)
      throw new InvalidArgumentError(`${field}["${key}"]`, value, 'must be at most 63 characters');
  }
}

/** The column values for the given mask paths (all of them on create), validated field by field. */
export function imageValues(image: Image, paths: readonly ImageMaskPath[]): Partial<ImageValues> {
  const out: Partial<ImageValues> = {};
  for (const path of paths) {
    const field = `image.${path}`;
    switch (path) {
      case 'display_name':
        if (!image.displayName || image.displayName.length > 100)
          throw new InvalidArgumentError(field, image.displayName, 'must be 1..100 characters');
        out.display_name = image.displayName;
        break;
      case 'container_image':
        if (!image.containerImage || image.containerImage.length > 512 || /\s/.test(image.containerImage))
          throw new InvalidArgumentError(field, image.containerImage, 'must be a container image reference');
        out.image_ref = image.containerImage;
        break;
      case 'android_version':
        if (image.androidVersion.length > 32)
          throw new InvalidArgumentError(field, image.androidVersion, 'must be at most 32 characters');
        out.android_version = image.androidVersion;
        break;
      case 'sdk_level':
        if (!Number.isInteger(image.sdkLevel) || image.sdkLevel < 0 || image.sdkLevel > 1000)
          throw new InvalidArgumentError(field, image.sdkLevel, 'must be in 0..1000');
        out.sdk_level = image.sdkLevel;
        break;
      case 'archs':
        image.archs.forEach((arch, i) => {
          if (!ARCHES.includes(arch as Arch))
            throw new InvalidArgumentError(`${field}[${i}]`, arch, `must be one of ${ARCHES.join(', ')}`);
          if (image.archs.indexOf(arch) !== i)
            throw new InvalidArgumentError(`${field}[${i}]`, arch, 'is listed twice');
        });
        out.arches = JSON.stringify(image.archs);
        break;
      case 'default_spec':
        out.default_spec = JSON.stringify(specToJson(checkDefaultSpec(field, image.defaultSpec)));
        break;
      case 'min_vcpu_millicores':
        checkNonNegative(field, image.minVcpuMillicores);
        out.min_vcpu_millicores = image.minVcpuMillicores;
        break;
      case 'min_memory_mib':
        checkNonNegative(field, image.minMemoryMib);
        out.min_memory_mib = image.minMemoryMib;
        break;
      case 'min_storage_gib':
        checkNonNegative(field, image.minStorageGib);
        out.min_storage_gib = image.minStorageGib;
        break;
      case 'state':
        if (image.state === ImageState.UNSPECIFIED || image.state === ImageState.ACTIVE) out.state = 'active';
        else if (image.state === ImageState.DEPRECATED) out.state = 'deprecated';
        else throw new InvalidArgumentError(field, image.state, 'is not an ImageState');
        break;
      case 'labels':
        checkLabels(field, image.labels);
        out.labels = JSON.stringify(image.labels);
        break;
    }
  }
  return out;
}

/**
 * A default spec: every field optional, the set ones within the device-spec contract; image_id and
 * image_ref are dropped.
 */
function checkDefaultSpec(field: string, spec: DeviceSpec | undefined): DeviceSpec {
  const s = spec ?? create(DeviceSpecSchema);
  const kept = create(DeviceSpecSchema, {
    vcpuMillicores: s.vcpuMillicores,
    memoryMib: s.memoryMib,
    storageGib: s.storageGib,
    ...(s.screen ? { screen: s.screen } : {}),
    gpuMode: s.gpuMode,
    properties: s.properties,
  });
  checkPartialSpec(field, kept);
  return kept;
}

/** A default below a minimum would make every create that relies on it fail: refuse it up front. */
export function checkDefaultsMeetMinimums(values: {
  default_spec: Record<string, unknown>;
  min_vcpu_millicores: number;
  min_memory_mib: number;
  min_storage_gib: number;
}): void {
  const pairs: [string, string, number][] = [
    ['vcpuMillicores', 'vcpu_millicores', values.min_vcpu_millicores],
    ['memoryMib', 'memory_mib', values.min_memory_mib],
    ['storageGib', 'storage_gib', values.min_storage_gib],
  ];
  for (const [json, snake, min] of pairs) {
    const value = Number(values.default_spec[json] ?? 0);
    if (value !== 0 && value < min) {
      throw new InvalidArgumentError(
        `image.default_spec.${snake}`,
        value,
        `must be at least min_${snake} ${min}`,
      );
    }
  }
}
