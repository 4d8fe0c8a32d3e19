import { type CreateDeviceRequest, type Placement, SpreadStrategy } from '@cphone/proto';
import type { Transaction } from 'kysely';
import { isOperator, type Principal } from '../auth/principal.js';
import { InvalidArgumentError, NotFoundError, PermissionDeniedError } from '../errors.js';
import { newId } from '../ids.js';
import { assertActive, loadUsableImages } from '../images/image-store.js';
import { checkLabels } from '../images/validate.js';
import type { Ask, NewDevice } from '../placement/plan.js';
import { ARCHES, type Arch, MAX_BATCH, type Strategy } from '../scheduler/index.js';
import type { DeviceRow } from '../store/devices.js';
import type { Database, GpuModeName, SpreadName } from '../store/schema.js';
import { powerFromProto, restartFromProto } from './convert.js';
import { type ImageRow, resolveSpec } from './spec.js';
import { placementColumns, specColumns } from './spec-columns.js';

export function checkBatchSize(count: number): void {
  if (count < 1 || count > MAX_BATCH) {
    throw new InvalidArgumentError('requests', `${count} requests`, `must hold 1..${MAX_BATCH} devices`);
  }
}

export interface PlacementRules {
  readonly nodeSelector: Record<string, string>;
  readonly strategy: Strategy;
  readonly spreadTenant: boolean;
  readonly arch: readonly Arch[];
  readonly pinHostId: string | undefined;
}

/**
 * A Placement checked against the image and the caller: the arch must be one the image runs on, and
 * pinning to a host is for operators. Returns the placement as stored.
 */
export function checkPlacement(
  field: string,
  placement: Placement | undefined,
  image: ImageRow,
  principal: Principal,
): void {
  checkLabels(`${field}.node_selector`, { ...placement?.nodeSelector });
  const spread = placement?.spread ?? SpreadStrategy.UNSPECIFIED;
  if (!(spread in SpreadStrategy)) {
    throw new InvalidArgumentError(`${field}.spread`, spread, 'is not a SpreadStrategy');
  }
  if (placement?.arch) {
    const wanted = placement.arch as Arch;
    if (!ARCHES.includes(wanted)) {
      throw new InvalidArgumentError(`${field}.arch`, placement.arch, `must be one of ${ARCHES.join(', ')}`);
    }
    const imageArchs = image.arches.filter((a): a is Arch => ARCHES.includes(a as Arch));
    if (imageArchs.length > 0 && !imageArchs.includes(wanted)) {
      throw new InvalidArgumentError(
        `${field}.arch`,
        placement.arch,
        `image ${JSON.stringify(image.id)} runs only on ${imageArchs.join(', ')}`,
      );
    }
  }
  if (placement?.hostId && !isOperator(principal)) {
    throw new PermissionDeniedError(
      `${field}.host_id: pinning a device to a host needs role ops or platform_admin`,
    );
  }
}

export interface PlacementRules {
  readonly nodeSelector: Record<string, string>;
  readonly strategy: Strategy;
  readonly spreadTenant: boolean;
  readonly arch: readonly Arch[];
  readonly pinHostId: string | undefined;
}

/**
 * What the scheduler is asked, from a device's stored placement: GPU_MODE_HOST adds gpu=true to the
 * node selector (such a host must carry that label), an empty arch means any the image runs on.
 * The same for a create and for a later move, so a drain places a device by the rules it was
 * created with.
 */
export function placementRulesOf(
  stored: {
    node_selector: Record<string, string>;
    spread: SpreadName;
    arch: string;
    pin_host_id: string | null;
  },
  image: Pick<ImageRow, 'arches'>,
  gpuMode: GpuModeName,
): PlacementRules {
  const nodeSelector = { ...stored.node_selector };
  if (gpuMode === 'host') nodeSelector.gpu = 'true';
  const imageArchs = image.arches.filter((a): a is Arch => ARCHES.includes(a as Arch));
  return {
    nodeSelector,
    strategy: stored.spread === 'spread' ? 'spread' : 'binpack',
    spreadTenant: stored.spread === 'spread_tenant',
    arch: stored.arch ? [stored.arch as Arch] : imageArchs,
    pinHostId: stored.pin_host_id ?? undefined,
  };
}

/** The scheduler's ask for a device of these resources, image and rules. */
export function askOf(
  resources: { vcpuMillicores: number; memoryMib: number; storageGib: number },
  image: Pick<ImageRow, 'id' | 'required_labels'>,
  rules: PlacementRules,
): Ask {
  return {
    resources: { ...resources, devices: 1 },
    image: { id: image.id, arch: rules.arch, requiredLabels: image.required_labels },
    nodeSelector: rules.nodeSelector,
    strategy: rules.strategy,
    spreadTenant: rules.spreadTenant,
    pinHostId: rules.pinHostId,
  };
}

/** An existing device's ask, from its row (a drain moves it by the rules it was created with). */
export function askOfDevice(device: DeviceRow, image: ImageRow): Ask {
  return askOf(
    { vcpuMillicores: device.vcpu_millicores, memoryMib: device.memory_mib, storageGib: device.storage_gib },
    image,
    placementRulesOf(device, image, device.gpu_mode),
  );
}

/**
 * Validates a batch of creates and resolves each into a draft the plan applier can place. Runs in
 * the create's transaction (the images are read FOR SHARE there); throws on the first bad field,
 * naming it, e.g. `requests[3].spec.memory_mib`.
 */
export async function draftDevices(
  trx: Transaction<Database>,
  principal: Principal,
  tenantId: string,
  requests: readonly CreateDeviceRequest[],
  /** How the images are read (a group of creates shares one read). */
  loadImages: typeof loadUsableImages = loadUsableImages,
): Promise<NewDevice[]> {
  checkBatchSize(requests.length);
  requests.forEach((r, i) => {
    if (!r.spec?.imageId)
      throw new InvalidArgumentError(`requests[${i}].spec.image_id`, r.spec?.imageId ?? '', 'is required');
  });
  const images = await loadImages(
    trx,
    tenantId,
    requests.map((r) => r.spec?.imageId ?? ''),
  );
  return requests.map((r, i): NewDevice => {
    const at = `requests[${i}]`;
    const imageId = r.spec?.imageId ?? '';
    const image = images.get(imageId);
    if (!image) throw new NotFoundError(`image (${at}.spec.image_id)`, imageId);
    assertActive(image, `${at}.spec.image_id`);
    if (r.displayName.length > 63)
      throw new InvalidArgumentError(`${at}.display_name`, r.displayName, 'must be at most 63 characters');
    checkLabels(`${at}.labels`, r.labels);
    if (r.spec?.imageRef && !isOperator(principal)) {
      // Deprecated in the public spec: the container image comes from the image (ImageService).
      throw new PermissionDeniedError(
        `${at}.spec.image_ref: choosing a container image needs role ops or platform_admin; set spec.image_id`,
      );
    }
    const { spec, resources } = resolveSpec(`${at}.spec`, r.spec, image);
    checkPlacement(`${at}.placement`, r.placement, image, principal);
    const stored = placementColumns(r.placement);
    const columns = specColumns(spec);
    const id = newId('dev');
    return {
      row: {
        id,
        display_name: r.displayName || id,
        labels: JSON.stringify(r.labels),
        ...columns,
        properties: JSON.stringify(columns.properties),
        ...stored,
        node_selector: JSON.stringify(stored.node_selector),
        desired_power: powerFromProto(r.desiredPowerState, `${at}.desired_power_state`),
        restart_policy: restartFromProto(r.restartPolicy, `${at}.restart_policy`),
        restart_generation: 0,
        spec_revision: 1,
        observed_spec_revision: 0,
        state_reason: '',
        state_message: '',
        adb_endpoint: '',
      },
      ask: askOf(resources, image, placementRulesOf(stored, image, columns.gpu_mode)),
    };
  });
}
