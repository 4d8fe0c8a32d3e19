// HostService: fleet operations. Hosts belong to the platform, not to a tenant, so every call needs
// the ops or platform_admin role and a caller without it gets PERMISSION_DENIED (not NOT_FOUND).
import type { ServiceImpl } from '@connectrpc/connect';
import { DrainMode, type HostService, HostState } from '@cphone/proto';
import { type Kysely, sql } from 'kysely';
import { principalOf } from '../api/context.js';
import { maskPaths } from '../api/field-mask.js';
import { idempotent } from '../api/idempotency.js';
import { pageOf, readPage } from '../api/pagination.js';
import { isOperator, type Principal } from '../auth/principal.js';
import type { Clock } from '../clock.js';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
} from '../errors.js';
import { newId } from '../ids.js';
import type { Logger } from '../logger.js';
import { explainPlacement } from '../placement/index.js';
import type { Database } from '../store/schema.js';
import { issueHostCredential, revokeHostCredentials } from './credentials.js';
import { beginDrain, countDevicesOn, settleDrain, stopDevicesOn, uncordon } from './drain.js';
import { forceRemoveDevices } from './force-delete.js';
import { newHostRow } from './host-row.js';
import {
  findHost,
  HOST_STATE_TO_PROTO,
  type HostRow,
  type HostStateName,
  hostStateSql,
  hostToProto,
  selectHosts,
} from './host-view.js';
import { beginMigrate, createMigrator, migrateProgress, restoreAfterCancel } from './migrate.js';
import { isUniqueViolation, validArch, validHostName, validLabels, validRatio } from './validate.js';

/** What HostService asks of the agent gateway; every hook is called after the change committed. */
export interface HostGatewayHooks {
  desiredChanged(hostId: string): void;
  /** Tells a connected agent that its host is draining (refuse new stream sessions). */
  drain?(hostId: string, reason: string, deadline?: Date): unknown;
  /** Closes the host's stream, e.g. after its credential was revoked. */
  disconnect?(hostId: string, reason: string): unknown;
}

export interface HostServiceDeps {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly gateway?: HostGatewayHooks | undefined;
  /**
   * One re-placement pass of a MIGRATE drain (hosts/migrate.ts); absent: a migrator of this
   * service's own, over deps.db.
   */
  readonly migrateDevices?: ((hostId: string) => Promise<void>) | undefined;
}

function requireOperator(principal: Principal, action: string): void {
  if (!isOperator(principal)) {
    throw new PermissionDeniedError(
      `${action} needs role ops or platform_admin; the caller is ${principal.role}`,
    );
  }
}

const STATE_FROM_PROTO = new Map(
  (Object.entries(HOST_STATE_TO_PROTO) as [HostStateName, HostState][]).map(([name, value]) => [value, name]),
);

export function hostService(deps: HostServiceDeps): Partial<ServiceImpl<typeof HostService>> {
  const { db, clock } = deps;
  const log = deps.logger.child({ module: 'hosts' });

  async function load(hostId: string): Promise<HostRow> {
    const row = hostId ? await findHost(db, hostId) : undefined;
    if (!row) throw new NotFoundError('host', hostId);
    return row;
  }

  const migrateDevices =
    deps.migrateDevices ??
    createMigrator({ db, clock, logger: deps.logger, desiredChanged: notifyDesired }).migrate;

  /**
   * The host with its drain advanced (a MIGRATE drain re-places the devices that are ready to move),
   * settled (completed or failed when due), and its live progress.
   */
  async function view(hostId: string) {
    try {
      await migrateDevices(hostId);
    } catch (err) {
      // Progress is still worth reporting; the next read or STOPPED report tries again.
      log.error({ err, hostId }, 'drain re-placement pass failed');
    }
    const progress = await settleDrain(db, hostId, clock.now());
    if (!progress) throw new NotFoundError('host', hostId);
    if (progress.desiredChanged) notifyDesired(hostId);
    const migrate =
      progress.host.drain_last_mode === 'migrate' ? await migrateProgress(db, hostId) : undefined;
    return { ...progress, migrate };
  }

  function toProto(progress: Awaited<ReturnType<typeof view>>) {
    return hostToProto(progress.host, progress.remaining, progress.migrate);
  }

  function notifyDesired(hostId: string): void {
    try {
      deps.gateway?.desiredChanged(hostId);
    } catch (err) {
      // The change is committed; the agent still converges at its next Hello.
      log.warn({ err, hostId }, 'could not notify the gateway of a desired-state change');
    }
  }

  async function tell(
    hook: 'drain' | 'disconnect',
    hostId: string,
    reason: string,
    deadline?: Date,
  ): Promise<void> {
    try {
      if (hook === 'drain') await deps.gateway?.drain?.(hostId, reason, deadline);
      else await deps.gateway?.disconnect?.(hostId, reason);
    } catch (err) {
      log.warn({ err, hostId, hook }, 'gateway hook failed');
    }
  }

  return {
    async enrollHost(req, context) {
      const principal = principalOf(context);
      requireOperator(principal, 'enrolling hosts');
      const name = validHostName(req.name);
      const arch = validArch(req.arch);
      const labels = validLabels(req.labels);
      const cpu = validRatio(req.overcommit?.cpu ?? 0, 'overcommit.cpu');
      const memory = validRatio(req.overcommit?.memory ?? 0, 'overcommit.memory');
      // The stored response of an idempotent retry holds the host id only, never the credential:
      // a replay issues a fresh credential (revoking the unseen first one) while the agent has
      // never connected, and none afterwards.
      let result: { hostId: string; credential: string };
      try {
        result = await idempotent(
          db,
          {
            tenantId: principal.tenantId,
            method: 'HostService/EnrollHost',
            key: req.requestId,
            request: { name, arch, labels, cpu, memory },
          },
          async (trx) => {
            const taken = await trx
              .selectFrom('host')
              .select('id')
              .where('name', '=', name)
              .executeTakeFirst();
            if (taken) throw new AlreadyExistsError('host', 'name', name);
            const hostId = newId('host');
            const now = clock.now();
            await trx
              .insertInto('host')
              .values(
                newHostRow({
                  id: hostId,
                  name,
                  arch,
                  labels: JSON.stringify(labels),
                  drain_last_mode: null,
                  overcommit_cpu: cpu,
                  overcommit_memory: memory,
                  create_time: now,
                  update_time: now,
                }),
              )
              .execute();
            const { credential } = await issueHostCredential(trx, hostId);
            return { hostId, credential };
          },
          {
            save: (r) => ({ hostId: r.hostId }),
            load: (saved) => ({ hostId: (saved as { hostId: string }).hostId, credential: '' }),
          },
        );
      } catch (error) {
        if (isUniqueViolation(error)) throw new AlreadyExistsError('host', 'name', name);
        throw error;
      }
      if (!result.credential) {
        const host = await load(result.hostId);
        if (host.connection === 'new') {
          result.credential = await db.transaction().execute(async (trx) => {
            await revokeHostCredentials(trx, host.id, clock.now());
            return (await issueHostCredential(trx, host.id)).credential;
          });
        }
      }
      log.info({ hostId: result.hostId, name, arch }, 'host enrolled');
      return { host: hostToProto(await load(result.hostId)), credential: result.credential };
    },

    async getHost(req, context) {
      requireOperator(principalOf(context), 'reading hosts');
      return { host: toProto(await view(req.hostId)) };
    },

    async listHosts(req, context) {
      requireOperator(principalOf(context), 'listing hosts');
      const states = req.states.map((s) => {
        const name = STATE_FROM_PROTO.get(s);
        if (!name) throw new InvalidArgumentError('states', HostState[s] ?? s, 'must be a host state');
        return name;
      });
      const selector = validLabels(req.labelSelector, 'label_selector');
      const page = readPage(req.pageSize, req.pageToken, { states, selector, arch: req.arch });
      let query = selectHosts(db).orderBy('host.name').limit(page.limit);
      if (states.length > 0) query = query.where(hostStateSql, 'in', states);
      if (Object.keys(selector).length > 0) {
        query = query.where(sql<boolean>`host.labels @> ${JSON.stringify(selector)}::jsonb`);
      }
      if (req.arch) query = query.where('host.arch', '=', req.arch);
      if (page.after) query = query.where('host.name', '>', page.after);
      const { items, nextPageToken } = pageOf(await query.execute(), page, (r) => r.name);
      const hosts = [];
      for (const row of items) {
        if (!row.drain_last_mode) {
          hosts.push(hostToProto(row));
          continue;
        }
        hosts.push(toProto(await view(row.id)));
      }
      return { hosts, nextPageToken };
    },

    async updateHost(req, context) {
      requireOperator(principalOf(context), 'updating hosts');
      const input = req.host;
      const host = await load(input?.hostId ?? '');
      const paths = maskPaths(req.updateMask, ['name', 'labels', 'overcommit']);
      const set: Record<string, unknown> = {};
      if (paths.has('name')) set.name = validHostName(input?.name ?? '', 'host.name');
      if (paths.has('labels')) set.labels = JSON.stringify(validLabels(input?.labels ?? {}, 'host.labels'));
      if (paths.has('overcommit')) {
        set.overcommit_cpu = validRatio(input?.overcommit?.cpu ?? 0, 'host.overcommit.cpu');
        set.overcommit_memory = validRatio(input?.overcommit?.memory ?? 0, 'host.overcommit.memory');
      }
      try {
        await db
          .updateTable('host')
          .set({ ...set, update_time: clock.now() })
          .where('id', '=', host.id)
          .execute();
      } catch (error) {
        if (isUniqueViolation(error)) throw new AlreadyExistsError('host', 'name', String(set.name));
        throw error;
      }
      return { host: toProto(await view(host.id)) };
    },

    async cordonHost(req, context) {
      requireOperator(principalOf(context), 'cordoning hosts');
      const host = await load(req.hostId);
      await db
        .updateTable('host')
        .set({ cordoned: true, update_time: clock.now() })
        .where('id', '=', host.id)
        .execute();
      log.info({ hostId: host.id, reason: req.reason }, 'host cordoned');
      return { host: toProto(await view(host.id)) };
    },

    async uncordonHost(req, context) {
      requireOperator(principalOf(context), 'uncordoning hosts');
      const host = await load(req.hostId);
      const restored = await db.transaction().execute(async (trx) => {
        const now = clock.now();
        const cancelled = await uncordon(trx, host.id, now);
        // A cancelled MIGRATE drain stopped the devices only to move them: they run again here.
        return cancelled === 'migrate' && (await restoreAfterCancel(trx, host.id, now));
      });
      log.info({ hostId: host.id }, 'host uncordoned');
      if (restored) notifyDesired(host.id);
      return { host: toProto(await view(host.id)) };
    },

    async drainHost(req, context) {
      requireOperator(principalOf(context), 'draining hosts');
      const current = await view(req.hostId);
      if (current.host.drain_state === 'in_progress') {
        const proto = toProto(current);
        return { host: proto, drainStatus: proto.drain };
      }
      const mode = req.mode === DrainMode.MIGRATE ? 'migrate' : 'stop';
      if (
        req.mode !== DrainMode.UNSPECIFIED &&
        req.mode !== DrainMode.STOP &&
        req.mode !== DrainMode.MIGRATE
      ) {
        throw new InvalidArgumentError('mode', req.mode, 'must be DRAIN_MODE_STOP or DRAIN_MODE_MIGRATE');
      }
      const now = clock.now();
      let deadline: Date | undefined;
      if (req.timeout) {
        const ms = Number(req.timeout.seconds) * 1000 + Math.floor(req.timeout.nanos / 1e6);
        if (ms <= 0) throw new InvalidArgumentError('timeout', `${req.timeout.seconds}s`, 'must be positive');
        deadline = new Date(now.getTime() + ms);
      }
      const hostId = current.host.id;
      const stopped = await db.transaction().execute(async (trx) => {
        await beginDrain(trx, hostId, { mode, reason: req.reason, deadline, now });
        return mode === 'stop' ? stopDevicesOn(trx, hostId, now) : beginMigrate(trx, hostId, now);
      });
      log.info({ hostId, mode, reason: req.reason, stopped }, 'drain started');
      if (stopped > 0) notifyDesired(hostId);
      await tell('drain', hostId, req.reason, deadline);
      const proto = toProto(await view(hostId));
      return { host: proto, drainStatus: proto.drain };
    },

    async getDrainStatus(req, context) {
      requireOperator(principalOf(context), 'reading drains');
      return { drainStatus: toProto(await view(req.hostId)).drain };
    },

    async revokeHostCredential(req, context) {
      requireOperator(principalOf(context), 'revoking host credentials');
      const host = await load(req.hostId);
      const credential = await db.transaction().execute(async (trx) => {
        await revokeHostCredentials(trx, host.id, clock.now());
        return req.issueNew ? (await issueHostCredential(trx, host.id)).credential : '';
      });
      log.info({ hostId: host.id, issuedNew: req.issueNew }, 'host credential revoked');
      await tell('disconnect', host.id, 'credential revoked');
      return { host: toProto(await view(host.id)), credential };
    },

    async deleteHost(req, context) {
      requireOperator(principalOf(context), 'deleting hosts');
      const host = await load(req.hostId);
      await db.transaction().execute(async (trx) => {
        // Lock the host row so no plan places a device on it while we look.
        await trx.selectFrom('host').select('id').where('id', '=', host.id).forUpdate().execute();
        const devices = await countDevicesOn(trx, host.id);
        if (devices > 0 && !req.force) {
          throw new FailedPreconditionError(
            `host ${JSON.stringify(host.id)} still has ${devices} device(s); drain it first or delete with force`,
          );
        }
        if (devices > 0) await forceRemoveDevices(trx, host.id, clock.now());
        await trx.deleteFrom('host').where('id', '=', host.id).execute();
      });
      log.info({ hostId: host.id, name: host.name, force: req.force }, 'host deleted');
      await tell('disconnect', host.id, 'host deleted');
      return {};
    },

    async explainPlacement(req, context) {
      const principal = principalOf(context);
      requireOperator(principal, 'explaining placement');
      return explainPlacement(db, principal, req);
    },
  };
}
