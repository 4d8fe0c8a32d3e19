// DeviceService. Every query is scoped to the caller's visible tenants, so another tenant's device
// is NOT_FOUND. Roles: every role (TENANT_USER and up) may create, read, operate (start, stop,
// reboot, update, install, shell, files, input, logcat) and delete the devices of its tenants: a
// phone is the tenant user's working tool, and quotas, not roles, bound what a tenant may consume.
// Pinning a device to a host (placement.host_id), choosing its container image and seeing ADB
// endpoints are for OPS and PLATFORM_ADMIN. CreateStreamSession is not served here.

import { fromJson, type JsonValue, toJson } from '@bufbuild/protobuf';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import {
  type BatchCreateDevicesRequest,
  BatchCreateDevicesRequestSchema,
  type DeleteDeviceRequest,
  type Device,
  DeviceSchema,
  type DeviceService,
  type GetDeviceRequest,
  type ListDeviceEventsRequest,
  type ListDevicesRequest,
  type RebootDeviceRequest,
  type StartDeviceRequest,
  type StopDeviceRequest,
  type UpdateDeviceRequest,
} from '@cphone/proto';
import { sql, type Transaction } from 'kysely';
import { createAdbTunnel } from '../adb-tunnels/adb-tunnel-service.js';
import { principalOf } from '../api/context.js';
import { dateOf } from '../api/convert.js';
import { maskPaths } from '../api/field-mask.js';
import { type IdempotencyScope, idempotentIn } from '../api/idempotency.js';
import { pageOf, readPage } from '../api/pagination.js';
import { transact } from '../api/validate-only.js';
import { tenantSubtreeQuery } from '../auth/api-keys.js';
import { isOperator, type Principal } from '../auth/principal.js';
import { resolveTenant } from '../auth/scope.js';
import type { Deps } from '../deps.js';
import { FailedPreconditionError, InvalidArgumentError, ResourceExhaustedError } from '../errors.js';
import { loadUsableImages } from '../images/image-store.js';
import { checkLabels } from '../images/validate.js';
import { type AppliedPlan, applyPlan } from '../placement/applier.js';
import { type DeviceEdit, updateDevice } from '../store/devices.js';
import type { Database } from '../store/schema.js';
import {
  createStreamSession,
  endDeviceStreams,
  listStreamSessions,
  revokeStreamSession,
} from '../streams/stream-service.js';
import { DeviceMinutesSpentError, QuotaExceededError } from '../tenants/admission.js';
import { type DeviceRow, deviceToProto, eventToProto, restartFromProto } from './convert.js';
import * as actions from './device-actions.js';
import { checkBatchSize, draftDevices } from './drafts.js';
import {
  bumpDesiredRevision,
  hardReboot,
  loadDevice,
  requestDeletion,
  startDevice,
  stopDevice,
} from './lifecycle.js';
import { stateFromProto } from './state-machine.js';

export type DeviceServiceDeps = Pick<
  Deps,
  'db' | 'clock' | 'config' | 'logger' | 'metrics' | 'gateway' | 'planner' | 'streams'
>;

const UPDATE_PATHS = ['display_name', 'labels', 'restart_policy'] as const;

const view = (p: Principal) => ({ operator: isOperator(p) });

/**
 * Creates up to 100 devices, all or none. Concurrent calls are committed together by the planner
 * (group commit), each with its own idempotency key, quota admission and result.
 */
export async function batchCreateDevices(
  deps: DeviceServiceDeps,
  req: BatchCreateDevicesRequest,
  context: HandlerContext,
) {
  const principal = principalOf(context);
  const tenantId = resolveTenant(principal, req.tenantId);
  checkBatchSize(req.requests.length);
  const scope = {
    tenantId: principal.tenantId,
    method: 'DeviceService/BatchCreateDevices',
    key: req.requestId,
    // A dry run and the real call are one request to the key.
    request: toJson(BatchCreateDevicesRequestSchema, { ...req, validateOnly: false }),
  } satisfies IdempotencyScope;
  const codec = {
    save: (list: Device[]) => list.map((d) => toJson(DeviceSchema, d)),
    load: (saved: unknown) => (saved as JsonValue[]).map((d) => fromJson(DeviceSchema, d)),
  };
  const answer = (applied: AppliedPlan) => applied.created.map((r) => deviceToProto(r, view(principal)));
  if (req.validateOnly)
    return { devices: await dryCreate(deps, req, scope, codec, answer, principal, tenantId) };
  let devices: Device[];
  try {
    devices = await deps.planner.plan({
      idempotency: { scope, ...codec },
      prepare: async ({ trx, once }) => {
        const creates = await draftDevices(trx, principal, tenantId, req.requests, (t, tenant, ids) =>
          once(`images ${tenant} ${[...new Set(ids)].sort().join(',')}`, () =>
            loadUsableImages(t, tenant, ids),
          ),
        );
        return { tenantId, creates, seed: creates[0]?.row.id ?? tenantId };
      },
      answer,
    });
  } catch (error) {
    if (error instanceof ResourceExhaustedError) {
      const refused = error instanceof QuotaExceededError || error instanceof DeviceMinutesSpentError;
      deps.metrics.placements.inc({ outcome: refused ? 'quota' : 'exhausted' }, req.requests.length);
    }
    throw error;
  }
  deps.metrics.placements.inc({ outcome: 'placed' }, devices.length);
  return { devices };
}

/**
 * BatchCreateDevices with validate_only: the plan the planner would apply, applied by the same
 * applier (quota admission, placement on the fleet read in the transaction, host locks and the
 * re-check) in a transaction rolled back at the end. Not through the planner: its group shares one
 * transaction and its fleet view would take the rolled-back placements for real ones. No agent is
 * told, no metric counts it, and the devices it made up lose their ids.
 */
async function dryCreate(
  deps: DeviceServiceDeps,
  req: BatchCreateDevicesRequest,
  scope: IdempotencyScope,
  codec: { save: (list: Device[]) => unknown; load: (saved: unknown) => Device[] },
  answer: (applied: AppliedPlan) => Device[],
  principal: Principal,
  tenantId: string,
): Promise<Device[]> {
  let made = false;
  const devices = await transact(deps.db, true, (trx) =>
    idempotentIn(
      trx,
      scope,
      async (t) => {
        const creates = await draftDevices(t, principal, tenantId, req.requests);
        const seed = creates[0]?.row.id ?? tenantId;
        const applied = await applyPlan(t, { tenantId, creates, seed }, { now: deps.clock.now() });
        made = true;
        return answer(applied);
      },
      codec,
    ),
  );
  // A request_id an earlier call used answers that call's devices, ids and all.
  if (!made) return devices;
  for (const d of devices) {
    if (d.displayName === d.deviceId) d.displayName = '';
    d.deviceId = '';
  }
  return devices;
}

export async function getDevice(deps: DeviceServiceDeps, req: GetDeviceRequest, context: HandlerContext) {
  const principal = principalOf(context);
  return {
    device: deviceToProto(await loadDevice(deps.db, principal.visibleTenants, req.deviceId), view(principal)),
  };
}

export async function listDevices(deps: DeviceServiceDeps, req: ListDevicesRequest, context: HandlerContext) {
  const principal = principalOf(context);
  const tenantId = resolveTenant(principal, req.tenantId);
  const states = req.states.map((s, i) => {
    const name = stateFromProto(s);
    if (!name) throw new InvalidArgumentError(`states[${i}]`, s, 'is not a DeviceState');
    return name;
  });
  checkLabels('label_selector', req.labelSelector);
  const selector = Object.fromEntries(Object.entries(req.labelSelector).sort(([a], [b]) => (a < b ? -1 : 1)));
  const page = readPage(req.pageSize, req.pageToken, {
    tenantId,
    descendants: req.includeDescendants,
    states: [...states].sort(),
    hostId: req.hostId,
    imageId: req.imageId,
    selector,
  });
  // One statement either way. The descendants of a tenant the caller sees are all visible to it
  // (its scope is its own tenant's subtree), so the subtree needs no second filter.
  let query = deps.db
    .selectFrom('device')
    .selectAll()
    .where((eb) =>
      req.includeDescendants
        ? sql<boolean>`${sql.ref('device.tenant_id')} in ${tenantSubtreeQuery(tenantId)}`
        : eb('tenant_id', '=', tenantId),
    )
    .orderBy('id', 'desc')
    .limit(page.limit);
  query = states.length > 0 ? query.where('state', 'in', states) : query.where('state', '!=', 'deleted');
  if (req.hostId) query = query.where('host_id', '=', req.hostId);
  if (req.imageId) query = query.where('image_id', '=', req.imageId);
  if (Object.keys(selector).length > 0) {
    query = query.where(sql<boolean>`labels @> ${JSON.stringify(selector)}::jsonb`);
  }
  if (page.after) query = query.where('id', '<', page.after);
  const { items, nextPageToken } = pageOf(await query.execute(), page, (r) => r.id);
  return { devices: items.map((r) => deviceToProto(r, view(principal))), nextPageToken };
}

export async function updateDeviceFields(
  deps: DeviceServiceDeps,
  req: UpdateDeviceRequest,
  context: HandlerContext,
) {
  const principal = principalOf(context);
  const device = req.device;
  if (!device?.deviceId)
    throw new InvalidArgumentError('device.device_id', device?.deviceId ?? '', 'is required');
  const paths = maskPaths(req.updateMask, UPDATE_PATHS);
  const edit: DeviceEdit = {};
  if (paths.has('display_name')) {
    if (device.displayName.length > 63)
      throw new InvalidArgumentError(
        'device.display_name',
        device.displayName,
        'must be at most 63 characters',
      );
    edit.display_name = device.displayName || device.deviceId;
  }
  if (paths.has('labels')) {
    checkLabels('device.labels', device.labels);
    edit.labels = JSON.stringify(device.labels);
  }
  if (paths.has('restart_policy'))
    edit.restart_policy = restartFromProto(device.restartPolicy, 'device.restart_policy');
  return {
    device: await mutate(
      deps,
      principal,
      device.deviceId,
      async (trx, row, now) => {
        if (row.state === 'deleted') {
          throw new FailedPreconditionError(`device ${JSON.stringify(row.id)} is deleted: cannot update it`);
        }
        await updateDevice(trx, row.id, edit, now);
        // The restart policy is part of what the agent runs; names and labels are not.
        return edit.restart_policy && edit.restart_policy !== row.restart_policy
          ? bumpDesiredRevision(trx, row.host_id, now)
          : null;
      },
      req.validateOnly,
    ),
  };
}

export async function start(deps: DeviceServiceDeps, req: StartDeviceRequest, context: HandlerContext) {
  return { device: await mutate(deps, principalOf(context), req.deviceId, startDevice, req.validateOnly) };
}

/** Stopping a device also ends its stream sessions, at once, with the reason its viewers see. */
export async function stop(deps: DeviceServiceDeps, req: StopDeviceRequest, context: HandlerContext) {
  const device = await mutate(deps, principalOf(context), req.deviceId, stopDevice, req.validateOnly);
  if (req.validateOnly) return { device };
  await endDeviceStreams(
    deps,
    { id: device.deviceId, host_id: device.hostId || null },
    'DEVICE_STOPPED',
    deps.clock.now(),
  );
  return { device };
}

/** So does deleting it. */
export async function remove(deps: DeviceServiceDeps, req: DeleteDeviceRequest, context: HandlerContext) {
  const device = await mutate(deps, principalOf(context), req.deviceId, requestDeletion, req.validateOnly);
  if (req.validateOnly) return { device };
  await endDeviceStreams(
    deps,
    { id: device.deviceId, host_id: device.hostId || null },
    'DEVICE_DELETED',
    deps.clock.now(),
  );
  return { device };
}

export async function reboot(deps: DeviceServiceDeps, req: RebootDeviceRequest, context: HandlerContext) {
  const principal = principalOf(context);
  if (req.hard) return { device: await mutate(deps, principal, req.deviceId, hardReboot) };
  await actions.rebootCommand(deps, principal, req.deviceId);
  return {
    device: deviceToProto(await loadDevice(deps.db, principal.visibleTenants, req.deviceId), view(principal)),
  };
}

export async function listDeviceEvents(
  deps: DeviceServiceDeps,
  req: ListDeviceEventsRequest,
  context: HandlerContext,
) {
  const principal = principalOf(context);
  const device = await loadDevice(deps.db, principal.visibleTenants, req.deviceId);
  const start = dateOf(req.startTime);
  const end = dateOf(req.endTime);
  const page = readPage(req.pageSize, req.pageToken, {
    deviceId: device.id,
    start: start?.toISOString() ?? '',
    end: end?.toISOString() ?? '',
  });
  let query = deps.db
    .selectFrom('device_event')
    .selectAll()
    .where('device_id', '=', device.id)
    .where('tenant_id', '=', device.tenant_id)
    .orderBy('id', 'desc')
    .limit(page.limit);
  if (start) query = query.where('create_time', '>=', start);
  if (end) query = query.where('create_time', '<', end);
  if (page.after) {
    const after = Number(page.after);
    if (!Number.isSafeInteger(after))
      throw new InvalidArgumentError('page_token', req.pageToken, 'is not a page token');
    query = query.where('id', '<', after);
  }
  const { items, nextPageToken } = pageOf(await query.execute(), page, (r) => String(r.id));
  return { deviceEvents: items.map(eventToProto), nextPageToken };
}

/** Runs one desired-state change on a locked device, then notifies its host and returns it fresh. */
async function mutate(
  deps: DeviceServiceDeps,
  principal: Principal,
  deviceId: string,
  apply: (trx: Transaction<Database>, row: DeviceRow, now: Date) => Promise<string | null>,
  validateOnly = false,
): Promise<Device> {
  const { row, hostId } = await transact(deps.db, validateOnly, async (trx) => {
    const current = await loadDevice(trx, principal.visibleTenants, deviceId, { forUpdate: true });
    const hostId = await apply(trx, current, deps.clock.now());
    return { row: await loadDevice(trx, principal.visibleTenants, deviceId), hostId };
  });
  if (hostId && !validateOnly) {
    try {
      deps.gateway.desiredChanged(hostId);
    } catch (err) {
      // The change is committed; the agent converges on its next full sync anyway.
      deps.logger.warn({ err, hostId }, 'desiredChanged failed');
    }
  }
  return deviceToProto(row, view(principal));
}

export function deviceService(deps: DeviceServiceDeps): Partial<ServiceImpl<typeof DeviceService>> {
  return {
    batchCreateDevices: (req, context) => batchCreateDevices(deps, req, context),
    getDevice: (req, context) => getDevice(deps, req, context),
    listDevices: (req, context) => listDevices(deps, req, context),
    updateDevice: (req, context) => updateDeviceFields(deps, req, context),
    startDevice: (req, context) => start(deps, req, context),
    stopDevice: (req, context) => stop(deps, req, context),
    deleteDevice: (req, context) => remove(deps, req, context),
    rebootDevice: (req, context) => reboot(deps, req, context),
    listDeviceEvents: (req, context) => listDeviceEvents(deps, req, context),
    installApp: (req, context) => actions.installApp(deps, req, context),
    takeScreenshot: (req, context) => actions.takeScreenshot(deps, req, context),
    execShell: (req, context) => actions.execShell(deps, req, context),
    pushFile: (req, context) => actions.pushFile(deps, req, context),
    pullFile: (req, context) => actions.pullFile(deps, req, context),
    sendInput: (req, context) => actions.sendInput(deps, req, context),
    dumpLogcat: (req, context) => actions.dumpLogcat(deps, req, context),
    ...streamHandlers(deps),
  };
}

/** The stream-session and ADB tunnel methods (tokens signed with the stream keys), where the replica holds stream keys (every server does; some tests not). */
function streamHandlers(deps: DeviceServiceDeps): Partial<ServiceImpl<typeof DeviceService>> {
  const streams = deps.streams;
  if (!streams) return {};
  const withStreams = { ...deps, streams };
  return {
    createStreamSession: (req, context) => createStreamSession(withStreams, req, context),
    revokeStreamSession: (req, context) => revokeStreamSession(withStreams, req, context),
    listStreamSessions: (req, context) => listStreamSessions(withStreams, req, context),
    createAdbTunnel: (req, context) => createAdbTunnel(withStreams, req, context),
  };
}
