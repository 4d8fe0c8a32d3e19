// A device's spec and placement are stored one column per field (store/schema.ts DeviceTable); the
// wire types are built from the columns and the columns from the validated wire types, directly,
// with no JSON in between.
import { create } from '@bufbuild/protobuf';
import {
  agentv1,
  type DeviceSpec,
  DeviceSpecSchema,
  GPU_MODES,
  type GpuMode,
  type Placement,
  PlacementSchema,
  SpreadStrategy,
} from '@cphone/proto';
import type { Selectable } from 'kysely';
import type { DeviceTable, GpuModeName, SpreadName } from '../store/schema.js';

export type SpecColumns = Pick<
  Selectable<DeviceTable>,
  | 'image_id'
  | 'image_ref'
  | 'vcpu_millicores'
  | 'memory_mib'
  | 'storage_gib'
  | 'screen_width_px'
  | 'screen_height_px'
  | 'screen_dpi'
  | 'screen_fps'
  | 'gpu_mode'
> & { properties: Record<string, string> };

export type PlacementColumns = Pick<Selectable<DeviceTable>, 'spread' | 'arch' | 'pin_host_id'> & {
  node_selector: Record<string, string>;
};

const SPREAD_TO_PROTO: Record<SpreadName, SpreadStrategy> = {
  binpack: SpreadStrategy.BINPACK,
  spread: SpreadStrategy.SPREAD,
  spread_tenant: SpreadStrategy.SPREAD_TENANT,
};

/** The spelling of a resolved spec's gpu mode (resolution leaves no UNSPECIFIED). */
export function gpuModeName(mode: GpuMode): GpuModeName {
  return GPU_MODES.name(mode) ?? 'guest';
}

export function spreadName(spread: SpreadStrategy): SpreadName {
  if (spread === SpreadStrategy.SPREAD) return 'spread';
  if (spread === SpreadStrategy.SPREAD_TENANT) return 'spread_tenant';
  return 'binpack';
}

/** The columns of a resolved (validated, defaults applied) spec. */
export function specColumns(spec: DeviceSpec): SpecColumns {
  return {
    image_id: spec.imageId,
    image_ref: spec.imageRef,
    vcpu_millicores: spec.vcpuMillicores,
    memory_mib: spec.memoryMib,
    storage_gib: spec.storageGib,
    screen_width_px: spec.screen?.widthPx ?? 0,
    screen_height_px: spec.screen?.heightPx ?? 0,
    screen_dpi: spec.screen?.dpi ?? 0,
    screen_fps: spec.screen?.fps ?? 0,
    gpu_mode: gpuModeName(spec.gpuMode),
    properties: { ...spec.properties },
  };
}

export function placementColumns(placement: Placement | undefined): PlacementColumns {
  return {
    node_selector: { ...placement?.nodeSelector },
    spread: spreadName(placement?.spread ?? SpreadStrategy.UNSPECIFIED),
    arch: placement?.arch ?? '',
    pin_host_id: placement?.hostId || null,
  };
}

/**
 * The spec as the public API shows it. The container image reference is the platform's business:
 * only operators see it (it stays in the proto, deprecated, for them).
 */
export function specToProto(row: SpecColumns, options: { showImageRef: boolean }): DeviceSpec {
  return create(DeviceSpecSchema, {
    imageId: row.image_id,
    imageRef: options.showImageRef ? row.image_ref : '',
    vcpuMillicores: row.vcpu_millicores,
    memoryMib: row.memory_mib,
    storageGib: row.storage_gib,
    screen: {
      widthPx: row.screen_width_px,
      heightPx: row.screen_height_px,
      dpi: row.screen_dpi,
      fps: row.screen_fps,
    },
    gpuMode: GPU_MODES.api(row.gpu_mode),
    properties: row.properties,
  });
}

/** The spec as the agent runs it (cphone.agent.v1, with no public image id). */
export function agentSpecOf(row: SpecColumns): agentv1.DeviceSpec {
  return create(agentv1.DeviceSpecSchema, {
    imageRef: row.image_ref,
    vcpuMillicores: row.vcpu_millicores,
    memoryMib: row.memory_mib,
    storageGib: row.storage_gib,
    screen: {
      widthPx: row.screen_width_px,
      heightPx: row.screen_height_px,
      dpi: row.screen_dpi,
      fps: row.screen_fps,
    },
    gpuMode: GPU_MODES.agent(row.gpu_mode),
    properties: row.properties,
  });
}

export function placementToProto(row: PlacementColumns): Placement {
  return create(PlacementSchema, {
    nodeSelector: row.node_selector,
    spread: SPREAD_TO_PROTO[row.spread],
    arch: row.arch,
    hostId: row.pin_host_id ?? '',
  });
}
