import { create } from '@bufbuild/protobuf';
import {
  type ExplainPlacementRequest,
  type ExplainPlacementResponse,
  ExplainPlacementResponseSchema,
  FilterFailureSchema,
  HostPlacementExplanationSchema,
  ScoreComponentSchema,
} from '@cphone/proto';
import type { Kysely } from 'kysely';
import type { Principal } from '../auth/principal.js';
import { resolveTenant } from '../auth/scope.js';
import { checkPlacement, placementRulesOf } from '../devices/drafts.js';
import { resolveSpec } from '../devices/spec.js';
import { gpuModeName, placementColumns } from '../devices/spec-columns.js';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { loadUsableImages } from '../images/image-store.js';
import {
  buildSnapshot,
  explain,
  MAX_BATCH,
  type PlacementRequest,
  place,
  type ScorerName,
} from '../scheduler/index.js';
import type { Database } from '../store/schema.js';
import { loadHostInputs } from './host-input.js';

const snake = (name: string) => name.replace(/-/g, '_');

/**
 * HostService.ExplainPlacement: the scheduler's verdict on every host for `count` devices of the
 * given spec and placement, resolved exactly as BatchCreateDevices resolves them (image defaults
 * and minimums, arch, node selector, GPU label, pin). Reads the fleet as it is now and writes
 * nothing. Hosts come best final score first, infeasible ones last; chosen_host_ids is what a
 * create would do now. The caller (HostService) decides who may call it.
 */
export async function explainPlacement(
  db: Kysely<Database>,
  principal: Principal,
  req: ExplainPlacementRequest,
): Promise<ExplainPlacementResponse> {
  const tenantId = resolveTenant(principal, req.tenantId);
  const count = req.count || 1;
  if (count < 1 || count > MAX_BATCH)
    throw new InvalidArgumentError('count', req.count, `must be in 1..${MAX_BATCH}`);
  const imageId = req.spec?.imageId ?? '';
  if (!imageId) throw new InvalidArgumentError('spec.image_id', imageId, 'is required');
  const image = await db
    .transaction()
    .execute(async (trx) => (await loadUsableImages(trx, tenantId, [imageId])).get(imageId));
  if (!image) throw new NotFoundError('image (spec.image_id)', imageId);
  const { spec, resources } = resolveSpec('spec', req.spec, image);
  checkPlacement('placement', req.placement, image, principal);
  const rules = placementRulesOf(placementColumns(req.placement), image, gpuModeName(spec.gpuMode));
  const inputs = await loadHostInputs(db, {
    tenantId: rules.spreadTenant ? tenantId : undefined,
    hostIds: rules.pinHostId ? [rules.pinHostId] : undefined,
  });
  const snapshot = buildSnapshot(inputs);
  const request: PlacementRequest = {
    count,
    resources: { ...resources, devices: 1 },
    image: { id: image.id, arch: rules.arch, requiredLabels: image.required_labels },
    tenantId,
    nodeSelector: rules.nodeSelector,
    strategy: rules.strategy,
    spreadTenant: rules.spreadTenant,
  };
  const explanation = explain(snapshot, request);
  const placement = place(snapshot, request);
  const hosts = [...explanation.hosts].sort((a, b) => {
    if (a.feasible !== b.feasible) return a.feasible ? -1 : 1;
    return (b.score ?? 0) - (a.score ?? 0) || (a.hostId < b.hostId ? -1 : 1);
  });
  return create(ExplainPlacementResponseSchema, {
    hosts: hosts.map((h) =>
      create(HostPlacementExplanationSchema, {
        hostId: h.hostId,
        hostName: h.name,
        feasible: h.feasible,
        filterFailures: h.failedFilter
          ? [create(FilterFailureSchema, { filter: snake(h.failedFilter), message: h.reason ?? '' })]
          : [],
        scores: h.scores
          ? (Object.entries(h.scores) as [ScorerName, number][])
              .filter(([name]) => explanation.weights[name] > 0)
              .map(([name, score]) =>
                create(ScoreComponentSchema, {
                  scorer: snake(name),
                  score,
                  weight: explanation.weights[name],
                }),
              )
          : [],
        finalScore: h.score ?? 0,
      }),
    ),
    feasible: placement.ok,
    chosenHostIds: placement.ok ? placement.assignments.map((a) => a.hostId) : [],
    message: placement.ok ? '' : placement.message,
  });
}
