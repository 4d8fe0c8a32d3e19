import { create, toJson } from '@bufbuild/protobuf';
import {
  type CreateDeviceRequest,
  DeviceSpecSchema,
  GpuMode,
  type Placement,
  PlacementSchema,
  SpreadStrategy,
} from '@cphone/proto';
import type { Transaction } from 'kysely';
import { isOperator, type Principal } from '../auth/principal.js';
import { InvalidArgumentError, NotFoundError, PermissionDeniedError } from '../errors.js';
import { newId } from '../ids.js';
import { assertActive, loadUsableImages } from '../images/image-store.js';
import { checkLabels } from '../images/validate.js';
import type { DeviceDraft } from '../placement/apply.js';
import { ARCHES, type Arch, MAX_BATCH, type Strategy } from '../scheduler/index.js';
import type { Database } from '../store/schema.js';
import { powerFromProto, restartFromProto } from './convert.js';
import { type ImageRow, resolveSpec } from './spec.js';

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
 * A Placement checked against the image and the caller: the arch must be one the image runs on,
 * pinning to a host is for operators, and GPU_MODE_HOST adds gpu=true to the node selector (the
 * proto: such a host must carry that label).
 */
export function placementRules(
  field: string,
  placement: Placement | undefined,
  image: ImageRow,
  gpuMode: GpuMode,
  principal: Principal,
): PlacementRules {
  const nodeSelector = { ...placement?.nodeSelector };
  checkLabels(`${field}.node_selector`, nodeSelector);
  if (gpuMode === GpuMode.HOST) nodeSelector.gpu = 'true';
  let strategy: Strategy = 'binpack';
  let spreadTenant = false;
  switch (placement?.spread ?? SpreadStrategy.UNSPECIFIED) {
    case SpreadStrategy.UNSPECIFIED:
    case SpreadStrategy.BINPACK:
      break;
    case SpreadStrategy.SPREAD:
      strategy = 'spread';
      break;
    case SpreadStrategy.SPREAD_TENANT:
      spreadTenant = true;
      break;
    default:
      throw new InvalidArgumentError(`${field}.spread`, placement?.spread, 'is not a SpreadStrategy');
  }
  const imageArchs = image.arches.filter((a): a is Arch => ARCHES.includes(a as Arch));
  let arch: readonly Arch[] = imageArchs;
  if (placement?.arch) {
    const wanted = placement.arch as Arch;
    if (!ARCHES.includes(wanted)) {
      throw new InvalidArgumentError(`${field}.arch`, placement.arch, `must be one of ${ARCHES.join(', ')}`);
    }
    if (imageArchs.length > 0 && !imageArchs.includes(wanted)) {
      throw new InvalidArgumentError(
        `${field}.arch`,
        placement.arch,
        `image ${JSON.stringify(image.id)} runs only on ${imageArchs.join(', ')}`,
      );
    }
    arch = [wanted];
  }
  if (placement?.hostId && !isOperator(principal)) {
    throw new PermissionDeniedError(
      `${field}.host_id: pinning a device to a host needs role ops or platform_admin`,
    );
  }
  return { nodeSelector, strategy, spreadTenant, arch, pinHostId: placement?.hostId || undefined };
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
): Promise<DeviceDraft[]> {
  checkBatchSize(requests.length);
  requests.forEach((r, i) => {
    if (!r.spec?.imageId)
      throw new InvalidArgumentError(`requests[${i}].spec.image_id`, r.spec?.imageId ?? '', 'is required');
  });
  const images = await loadUsableImages(
    trx,
    tenantId,
    requests.map((r) => r.spec?.imageId ?? ''),
  );
  return requests.map((r, i): DeviceDraft => {
    const at = `requests[${i}]`;
    const imageId = r.spec?.imageId ?? '';
    const image = images.get(imageId);
    if (!image) throw new NotFoundError(`image (${at}.spec.image_id)`, imageId);
    assertActive(image, `${at}.spec.image_id`);
    if (r.displayName.length > 63)
      throw new InvalidArgumentError(`${at}.display_name`, r.displayName, 'must be at most 63 characters');
    checkLabels(`${at}.labels`, r.labels);
    // Deprecated in the API: the container image is the platform's to choose, through the image.
    if (r.spec?.imageRef && !isOperator(principal)) {
      throw new PermissionDeniedError(
        `${at}.spec.image_ref: choosing a container image needs role ops or platform_admin; use image_id`,
      );
    }
    const { spec, resources } = resolveSpec(`${at}.spec`, r.spec, image);
    const rules = placementRules(`${at}.placement`, r.placement, image, spec.gpuMode, principal);
    const id = newId('dev');
    return {
      id,
      displayName: r.displayName || id,
      labels: r.labels,
      imageId,
      spec: toJson(DeviceSpecSchema, spec) as Record<string, unknown>,
      resources,
      placement: toJson(PlacementSchema, r.placement ?? create(PlacementSchema)) as Record<string, unknown>,
      desiredPower: powerFromProto(r.desiredPowerState, `${at}.desired_power_state`),
      restartPolicy: restartFromProto(r.restartPolicy, `${at}.restart_policy`),
      image: { id: imageId, arch: rules.arch, requiredLabels: image.required_labels },
      nodeSelector: rules.nodeSelector,
      strategy: rules.strategy,
      spreadTenant: rules.spreadTenant,
      pinHostId: rules.pinHostId,
    };
  });
}
