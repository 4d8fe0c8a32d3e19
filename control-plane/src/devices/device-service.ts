import { fromJson, type JsonValue, toJson } from '@bufbuild/protobuf';
import type { ServiceImpl } from '@connectrpc/connect';
import {
  BatchCreateDevicesRequestSchema,
  type Device,
  DeviceSchema,
  type DeviceService,
} from '@cphone/proto';
import { sql, type Transaction } from 'kysely';
import { principalOf } from '../api/context.js';
import { dateOf } from '../api/convert.js';
import { maskPaths } from '../api/field-mask.js';
import { idempotent } from '../api/idempotency.js';
import { pageOf, readPage } from '../api/pagination.js';
import { tenantSubtree } from '../auth/api-keys.js';
import { isOperator, type Principal } from '../auth/principal.js';
import { resolveTenant } from '../auth/scope.js';
import type { Deps } from '../deps.js';
import { FailedPreconditionError, InvalidArgumentError, ResourceExhaustedError } from '../errors.js';
import { checkLabels } from '../images/validate.js';
import { applyPlacement } from '../placement/apply.js';
import { FleetCache } from '../placement/fleet-cache.js';
import { retryOnConflict } from '../placement/retry.js';
import type { Database } from '../store/schema.js';
import { type DeviceRow, deviceToProto, eventToProto, restartFromProto } from './convert.js';
import { deviceActions } from './device-actions.js';
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

export type DeviceServiceDeps = Pick<Deps, 'db' | 'clock' | 'config' | 'logger' | 'metrics' | 'gateway'>;

const UPDATE_PATHS = ['display_name', 'labels', 'restart_policy'] as const;

/**
 * DeviceService. Every query is scoped to the caller's visible tenants, so another tenant's device
 * is NOT_FOUND. Roles: every role (TENANT_USER and up) may create, read, operate (start, stop,
 * reboot, update, install, shell, files, input, logcat) and delete the devices of its tenants: a
 * phone is the tenant user's working tool, and quotas, not roles, bound what a tenant may consume.
 * Pinning a device to a host (placement.host_id), choosing or seeing its container image
 * (spec.image_ref) and seeing ADB endpoints are for OPS and PLATFORM_ADMIN. CreateStreamSession is
 * not served here.
 */
export function deviceService(deps: DeviceServiceDeps): Partial<ServiceImpl<typeof DeviceService>> {
  const { db, clock, gateway, metrics } = deps;
  const log = deps.logger.child({ module: 'devices' });
  const view = (p: Principal) => ({ showAdbEndpoint: isOperator(p), showImageRef: isOperator(p) });
  const actions = deviceActions(deps);
  const fleet = new FleetCache(db);

  function notify(hostIds: Iterable<string | null>): void {
    for (const hostId of hostIds) {
      if (!hostId) continue;
      try {
        gateway.desiredChanged(hostId);
      } catch (err) {
        // The change is committed; the agent converges on its next full sync anyway.
        log.warn({ err, hostId }, 'desiredChanged failed');
      }
    }
  }

  /** Runs one desired-state change on a locked device, then notifies its host and returns it fresh. */
  async function mutate(
    principal: Principal,
    deviceId: string,
    apply: (trx: Transaction<Database>, row: DeviceRow, now: Date) => Promise<string | null>,
  ): Promise<Device> {
    const { row, hostId } = await db.transaction().execute(async (trx) => {
      const current = await loadDevice(trx, principal.visibleTenants, deviceId, { forUpdate: true });
      const hostId = await apply(trx, current, clock.now());
      return { row: await loadDevice(trx, principal.visibleTenants, deviceId), hostId };
    });
    notify([hostId]);
    return deviceToProto(row, view(principal));
  }

  return {
    async batchCreateDevices(req, context) {
      const principal = principalOf(context);
      const tenantId = resolveTenant(principal, req.tenantId);
      checkBatchSize(req.requests.length);
      let created: { devices: Device[]; hostIds: string[] };
      try {
        created = await retryOnConflict(async () => {
          // Read outside the transaction: see FleetCache.
          await fleet.refresh();
          return idempotent(
            db,
            {
              tenantId: principal.tenantId,
              method: 'DeviceService/BatchCreateDevices',
              key: req.requestId,
              request: toJson(BatchCreateDevicesRequestSchema, req),
            },
            async (trx) => {
              const drafts = await draftDevices(trx, principal, tenantId, req.requests);
              const applied = await applyPlacement(trx, {
                tenantId,
                devices: drafts,
                seed: drafts[0]?.id ?? tenantId,
                now: clock.now(),
                cache: fleet,
              });
              return {
                devices: applied.devices.map((r) => deviceToProto(r, view(principal))),
                hostIds: applied.hostIds,
              };
            },
            {
              save: (v) => ({ devices: v.devices.map((d) => toJson(DeviceSchema, d)), hostIds: v.hostIds }),
              load: (saved) => {
                const s = saved as { devices: JsonValue[]; hostIds: string[] };
                return { devices: s.devices.map((d) => fromJson(DeviceSchema, d)), hostIds: s.hostIds };
              },
            },
          );
        });
      } catch (error) {
        if (error instanceof ResourceExhaustedError)
          metrics.placements.inc({ outcome: 'exhausted' }, req.requests.length);
        throw error;
      }
      metrics.placements.inc({ outcome: 'placed' }, created.devices.length);
      notify(created.hostIds);
      return { devices: created.devices };
    },

    async getDevice(req, context) {
      const principal = principalOf(context);
      return {
        device: deviceToProto(await loadDevice(db, principal.visibleTenants, req.deviceId), view(principal)),
      };
    },

    async listDevices(req, context) {
      const principal = principalOf(context);
      const tenantId = resolveTenant(principal, req.tenantId);
      const tenants = req.includeDescendants
        ? (await tenantSubtree(db, tenantId)).filter((t) => principal.visibleTenants.includes(t))
        : [tenantId];
      const states = req.states.map((s, i) => {
        const name = stateFromProto(s);
        if (!name) throw new InvalidArgumentError(`states[${i}]`, s, 'is not a DeviceState');
        return name;
      });
      checkLabels('label_selector', req.labelSelector);
      const selector = Object.fromEntries(
        Object.entries(req.labelSelector).sort(([a], [b]) => (a < b ? -1 : 1)),
      );
      const page = readPage(req.pageSize, req.pageToken, {
        tenantId,
        descendants: req.includeDescendants,
        states: [...states].sort(),
        hostId: req.hostId,
        imageId: req.imageId,
        selector,
      });
      let query = db
        .selectFrom('device')
        .selectAll()
        .where('tenant_id', 'in', tenants)
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
    },

    async updateDevice(req, context) {
      const principal = principalOf(context);
      const device = req.device;
      if (!device?.deviceId)
        throw new InvalidArgumentError('device.device_id', device?.deviceId ?? '', 'is required');
      const paths = maskPaths(req.updateMask, UPDATE_PATHS);
      const set: { display_name?: string; labels?: string; restart_policy?: DeviceRow['restart_policy'] } =
        {};
      if (paths.has('display_name')) {
        if (device.displayName.length > 63)
          throw new InvalidArgumentError(
            'device.display_name',
            device.displayName,
            'must be at most 63 characters',
          );
        set.display_name = device.displayName || device.deviceId;
      }
      if (paths.has('labels')) {
        checkLabels('device.labels', device.labels);
        set.labels = JSON.stringify(device.labels);
      }
      if (paths.has('restart_policy'))
        set.restart_policy = restartFromProto(device.restartPolicy, 'device.restart_policy');
      return {
        device: await mutate(principal, device.deviceId, async (trx, row, now) => {
          if (row.state === 'deleted') {
            throw new FailedPreconditionError(
              `device ${JSON.stringify(row.id)} is deleted: cannot update it`,
            );
          }
          await trx
            .updateTable('device')
            .set({ ...set, update_time: now })
            .where('id', '=', row.id)
            .execute();
          // The restart policy is part of what the agent runs; names and labels are not.
          return set.restart_policy && set.restart_policy !== row.restart_policy
            ? bumpDesiredRevision(trx, row.host_id, now)
            : null;
        }),
      };
    },

    async startDevice(req, context) {
      return { device: await mutate(principalOf(context), req.deviceId, startDevice) };
    },

    async stopDevice(req, context) {
      return { device: await mutate(principalOf(context), req.deviceId, stopDevice) };
    },

    async deleteDevice(req, context) {
      return { device: await mutate(principalOf(context), req.deviceId, requestDeletion) };
    },

    async rebootDevice(req, context) {
      const principal = principalOf(context);
      if (req.hard) return { device: await mutate(principal, req.deviceId, hardReboot) };
      await actions.reboot(principal, req.deviceId);
      return {
        device: deviceToProto(await loadDevice(db, principal.visibleTenants, req.deviceId), view(principal)),
      };
    },

    async listDeviceEvents(req, context) {
      const principal = principalOf(context);
      const device = await loadDevice(db, principal.visibleTenants, req.deviceId);
      const start = dateOf(req.startTime);
      const end = dateOf(req.endTime);
      const page = readPage(req.pageSize, req.pageToken, {
        deviceId: device.id,
        start: start?.toISOString() ?? '',
        end: end?.toISOString() ?? '',
      });
      let query = db
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
    },

    ...actions.handlers,
  };
}
