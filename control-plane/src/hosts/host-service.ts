// HostService: fleet operations. Hosts belong to the platform, not to a tenant, so every call needs
// the ops or platform_admin role and a caller without it gets PERMISSION_DENIED (not NOT_FOUND).
// Reads only read: a drain advances on the leader's drainer (drainer.ts), never on a GetHost.
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import {
  type CordonHostRequest,
  type DeleteHostRequest,
  type DrainHostRequest,
  DrainMode,
  type EnrollHostRequest,
  type ExplainPlacementRequest,
  type GetDrainStatusRequest,
  type GetHostRequest,
  type HostService,
  HostState,
  type ListHostsRequest,
  type RevokeHostCredentialRequest,
  type UncordonHostRequest,
  type UpdateHostRequest,
} from '@cphone/proto';
import { type Kysely, sql, type Transaction } from 'kysely';
import { principalOf } from '../api/context.js';
import { maskPaths } from '../api/field-mask.js';
import { idempotentIn } from '../api/idempotency.js';
import { pageOf, readPage } from '../api/pagination.js';
import { transact } from '../api/validate-only.js';
import { isOperator, type Principal } from '../auth/principal.js';
import type { Clock } from '../clock.js';
import { bumpDesiredRevision } from '../devices/lifecycle.js';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
} from '../errors.js';
import { newId } from '../ids.js';
import type { Logger } from '../logger.js';
import type { AppliedPlan } from '../placement/applier.js';
import { explainPlacement } from '../placement/explain.js';
import { countDevicesOnHost } from '../store/devices.js';
import {
  deleteHost as deleteHostRow,
  endDrain,
  findHost,
  hostIdByName,
  hostStateSql,
  insertHost,
  lockHosts,
  selectHosts,
  updateHost as updateHostRow,
} from '../store/hosts.js';
import type { Database } from '../store/schema.js';
import { issueHostCredential, revokeHostCredentials } from './credentials.js';
import { drainRemaining, lockHostAndDevices, migrateProgress, startDrain } from './drain.js';
import { previewMoves } from './drainer.js';
import { forceRemoveDevices } from './force-delete.js';
import { newHostRow } from './host-row.js';
import { HOST_STATE_TO_PROTO, type HostRow, type HostStateName, hostToProto } from './host-view.js';
import { isUniqueViolation, validArch, validHostName, validLabels, validRatio } from './validate.js';

/** A drain that has not finished in a month is a mistake in the request, not a plan. */
const MAX_DRAIN_TIMEOUT_MS = 30 * 24 * 3_600_000;

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
  /** Settles plans applied here (a forced delete's releases) once committed. */
  readonly planner?: { settle(applied: AppliedPlan): void } | undefined;
  /** Asks the drainer for a pass soon (a drain started); the leader's timer runs one anyway. */
  readonly nudgeDrainer?: (() => unknown) | undefined;
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

async function load(deps: HostServiceDeps, hostId: string): Promise<HostRow> {
  const row = hostId ? await findHost(deps.db, hostId) : undefined;
  if (!row) throw new NotFoundError('host', hostId);
  return row;
}

/** The host as the API shows it, with its drain's live progress read from the rows. */
async function present(deps: HostServiceDeps, row: HostRow) {
  if (!row.drain_last_mode) return hostToProto(row);
  // One snapshot for both counts, so a move that commits between them is seen by both or neither.
  return deps.db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute((trx) => presentIn(trx, row));
}

/** present() inside a transaction of the caller's (a dry run's, which sees its own writes). */
async function presentIn(trx: Transaction<Database>, row: HostRow) {
  const mode = row.drain_last_mode;
  if (!mode) return hostToProto(row);
  const remaining = await drainRemaining(trx, row.id, mode);
  const migrate = mode === 'migrate' ? await migrateProgress(trx, row.id) : undefined;
  return hostToProto(row, remaining, migrate);
}

/** The host as a dry run left it, in its transaction. */
async function reloadIn(trx: Transaction<Database>, hostId: string) {
  const row = await findHost(trx, hostId);
  if (!row) throw new NotFoundError('host', hostId);
  return presentIn(trx, row);
}

async function reload(deps: HostServiceDeps, hostId: string) {
  return present(deps, await load(deps, hostId));
}

function notifyDesired(deps: HostServiceDeps, hostId: string): void {
  try {
    deps.gateway?.desiredChanged(hostId);
  } catch (err) {
    // The change is committed; the agent still converges at its next Hello.
    deps.logger.warn({ err, hostId }, 'could not notify the gateway of a desired-state change');
  }
}

async function tell(
  deps: HostServiceDeps,
  hook: 'drain' | 'disconnect',
  hostId: string,
  reason: string,
  deadline?: Date,
): Promise<void> {
  try {
    if (hook === 'drain') await deps.gateway?.drain?.(hostId, reason, deadline);
    else await deps.gateway?.disconnect?.(hostId, reason);
  } catch (err) {
    deps.logger.warn({ err, hostId, hook }, 'gateway hook failed');
  }
}

export async function enrollHost(deps: HostServiceDeps, req: EnrollHostRequest, context: HandlerContext) {
  const principal = principalOf(context);
  requireOperator(principal, 'enrolling hosts');
  const { db, clock } = deps;
  const name = validHostName(req.name);
  const arch = validArch(req.arch);
  const labels = validLabels(req.labels);
  const cpu = validRatio(req.overcommit?.cpu ?? 0, 'overcommit.cpu');
  const memory = validRatio(req.overcommit?.memory ?? 0, 'overcommit.memory');
  // The stored response of an idempotent retry holds the host id only, never the credential: a
  // replay issues a fresh credential (revoking the unseen first one) while the agent has never
  // connected, and none afterwards.
  let made = false;
  let result: { hostId: string; credential: string; row: HostRow };
  try {
    result = await transact(db, req.validateOnly, async (trx) => {
      const { hostId, credential } = await idempotentIn(
        trx,
        {
          tenantId: principal.tenantId,
          method: 'HostService/EnrollHost',
          key: req.requestId,
          request: { name, arch, labels, cpu, memory },
        },
        async (t) => {
          if (await hostIdByName(t, name)) throw new AlreadyExistsError('host', 'name', name);
          const hostId = newId('host');
          const now = clock.now();
          await insertHost(
            t,
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
          );
          const { credential } = await issueHostCredential(t, hostId);
          made = true;
          return { hostId, credential };
        },
        {
          save: (r) => ({ hostId: r.hostId }),
          load: (saved) => ({ hostId: (saved as { hostId: string }).hostId, credential: '' }),
        },
      );
      const row = await findHost(trx, hostId);
      if (!row) throw new NotFoundError('host', hostId);
      return { hostId, credential, row };
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw new AlreadyExistsError('host', 'name', name);
    throw error;
  }
  if (req.validateOnly) {
    // No credential is issued; a host only made up has no id either.
    return { host: hostToProto(made ? { ...result.row, id: '' } : result.row), credential: '' };
  }
  if (!result.credential && result.row.connection === 'new') {
    result.credential = await db.transaction().execute(async (trx) => {
      await revokeHostCredentials(trx, result.hostId, clock.now());
      return (await issueHostCredential(trx, result.hostId)).credential;
    });
  }
  deps.logger.info({ hostId: result.hostId, name, arch }, 'host enrolled');
  return { host: hostToProto(await load(deps, result.hostId)), credential: result.credential };
}

export async function getHost(deps: HostServiceDeps, req: GetHostRequest, context: HandlerContext) {
  requireOperator(principalOf(context), 'reading hosts');
  return { host: await reload(deps, req.hostId) };
}

export async function listHosts(deps: HostServiceDeps, req: ListHostsRequest, context: HandlerContext) {
  requireOperator(principalOf(context), 'listing hosts');
  const states = req.states.map((s) => {
    const name = STATE_FROM_PROTO.get(s);
    if (!name) throw new InvalidArgumentError('states', HostState[s] ?? s, 'must be a host state');
    return name;
  });
  const selector = validLabels(req.labelSelector, 'label_selector');
  const page = readPage(req.pageSize, req.pageToken, { states, selector, arch: req.arch });
  let query = selectHosts(deps.db).orderBy('host.name').limit(page.limit);
  if (states.length > 0) query = query.where(hostStateSql, 'in', states);
  if (Object.keys(selector).length > 0) {
    query = query.where(sql<boolean>`host.labels @> ${JSON.stringify(selector)}::jsonb`);
  }
  if (req.arch) query = query.where('host.arch', '=', req.arch);
  if (page.after) query = query.where('host.name', '>', page.after);
  const { items, nextPageToken } = pageOf(await query.execute(), page, (r) => r.name);
  const hosts = [];
  for (const row of items) hosts.push(await present(deps, row));
  return { hosts, nextPageToken };
}

export async function updateHost(deps: HostServiceDeps, req: UpdateHostRequest, context: HandlerContext) {
  requireOperator(principalOf(context), 'updating hosts');
  const input = req.host;
  const host = await load(deps, input?.hostId ?? '');
  const paths = maskPaths(req.updateMask, ['name', 'labels', 'overcommit']);
  const edit: Parameters<typeof updateHostRow>[2] = {};
  if (paths.has('name')) edit.name = validHostName(input?.name ?? '', 'host.name');
  if (paths.has('labels')) edit.labels = JSON.stringify(validLabels(input?.labels ?? {}, 'host.labels'));
  if (paths.has('overcommit')) {
    edit.overcommit_cpu = validRatio(input?.overcommit?.cpu ?? 0, 'host.overcommit.cpu');
    edit.overcommit_memory = validRatio(input?.overcommit?.memory ?? 0, 'host.overcommit.memory');
  }
  try {
    const dry = await transact(deps.db, req.validateOnly, async (trx) => {
      await updateHostRow(trx, host.id, edit, deps.clock.now());
      return req.validateOnly ? reloadIn(trx, host.id) : undefined;
    });
    if (dry) return { host: dry };
  } catch (error) {
    if (isUniqueViolation(error)) throw new AlreadyExistsError('host', 'name', String(edit.name));
    throw error;
  }
  return { host: await reload(deps, host.id) };
}

export async function cordonHost(deps: HostServiceDeps, req: CordonHostRequest, context: HandlerContext) {
  requireOperator(principalOf(context), 'cordoning hosts');
  const host = await load(deps, req.hostId);
  const dry = await transact(deps.db, req.validateOnly, async (trx) => {
    await updateHostRow(trx, host.id, { cordoned: true }, deps.clock.now());
    return req.validateOnly ? reloadIn(trx, host.id) : undefined;
  });
  if (dry) return { host: dry };
  deps.logger.info({ hostId: host.id, reason: req.reason }, 'host cordoned');
  return { host: await reload(deps, host.id) };
}

/** The host takes devices again; a drain in progress is cancelled and lets go of its devices. */
export async function uncordonHost(deps: HostServiceDeps, req: UncordonHostRequest, context: HandlerContext) {
  requireOperator(principalOf(context), 'uncordoning hosts');
  const host = await load(deps, req.hostId);
  const cancelled = await deps.db.transaction().execute(async (trx) => {
    const now = deps.clock.now();
    await updateHostRow(trx, host.id, { cordoned: false }, now);
    if (!(await endDrain(trx, host.id, 'cancelled', now))) return false;
    // The held powers are lifted: a cancelled MIGRATE drain's devices run again here.
    await bumpDesiredRevision(trx, host.id, now);
    return true;
  });
  deps.logger.info({ hostId: host.id, cancelledDrain: cancelled }, 'host uncordoned');
  if (cancelled) notifyDesired(deps, host.id);
  return { host: await reload(deps, host.id) };
}

export async function drainHost(deps: HostServiceDeps, req: DrainHostRequest, context: HandlerContext) {
  requireOperator(principalOf(context), 'draining hosts');
  const current = await load(deps, req.hostId);
  if (current.drain_state === 'in_progress') {
    const host = await present(deps, current);
    return { host, drainStatus: host.drain };
  }
  if (req.mode !== DrainMode.UNSPECIFIED && req.mode !== DrainMode.STOP && req.mode !== DrainMode.MIGRATE) {
    throw new InvalidArgumentError('mode', req.mode, 'must be DRAIN_MODE_STOP or DRAIN_MODE_MIGRATE');
  }
  const mode = req.mode === DrainMode.MIGRATE ? 'migrate' : 'stop';
  const now = deps.clock.now();
  let deadline: Date | undefined;
  if (req.timeout) {
    const ms = Number(req.timeout.seconds) * 1000 + Math.floor(req.timeout.nanos / 1e6);
    if (ms <= 0 || ms > MAX_DRAIN_TIMEOUT_MS) {
      throw new InvalidArgumentError(
        'timeout',
        `${req.timeout.seconds}s`,
        'must be positive and at most 30 days',
      );
    }
    deadline = new Date(now.getTime() + ms);
  }
  const hostId = current.id;
  const dry = await transact(deps.db, req.validateOnly, async (trx) => {
    // Locked (its devices first, as every writer does) so two DrainHost calls cannot both start one.
    await lockHostAndDevices(trx, hostId);
    const again = await findHost(trx, hostId);
    if (again?.drain_state === 'in_progress')
      return req.validateOnly ? { host: await presentIn(trx, again) } : undefined;
    await startDrain(trx, hostId, { mode, reason: req.reason, deadline, now });
    if (!req.validateOnly) return undefined;
    const host = await reloadIn(trx, hostId);
    return { host, movePreviews: mode === 'migrate' ? await previewMoves(trx, hostId, now) : [] };
  });
  if (dry) return { host: dry.host, drainStatus: dry.host.drain, movePreviews: dry.movePreviews ?? [] };
  deps.logger.info({ hostId, mode, reason: req.reason }, 'drain started');
  notifyDesired(deps, hostId);
  await tell(deps, 'drain', hostId, req.reason, deadline);
  try {
    deps.nudgeDrainer?.();
  } catch (err) {
    deps.logger.warn({ err, hostId }, 'drainer nudge failed');
  }
  const host = await reload(deps, hostId);
  return { host, drainStatus: host.drain };
}

export async function getDrainStatus(
  deps: HostServiceDeps,
  req: GetDrainStatusRequest,
  context: HandlerContext,
) {
  requireOperator(principalOf(context), 'reading drains');
  return { drainStatus: (await reload(deps, req.hostId)).drain };
}

export async function revokeHostCredential(
  deps: HostServiceDeps,
  req: RevokeHostCredentialRequest,
  context: HandlerContext,
) {
  requireOperator(principalOf(context), 'revoking host credentials');
  const host = await load(deps, req.hostId);
  const credential = await deps.db.transaction().execute(async (trx) => {
    await revokeHostCredentials(trx, host.id, deps.clock.now());
    return req.issueNew ? (await issueHostCredential(trx, host.id)).credential : '';
  });
  deps.logger.info({ hostId: host.id, issuedNew: req.issueNew }, 'host credential revoked');
  await tell(deps, 'disconnect', host.id, 'credential revoked');
  return { host: await reload(deps, host.id), credential };
}

export async function deleteHost(deps: HostServiceDeps, req: DeleteHostRequest, context: HandlerContext) {
  requireOperator(principalOf(context), 'deleting hosts');
  const host = await load(deps, req.hostId);
  const released = await deps.db.transaction().execute(async (trx) => {
    const devices = await countDevicesOnHost(trx, host.id);
    if (devices > 0 && !req.force) {
      throw new FailedPreconditionError(
        `host ${JSON.stringify(host.id)} still has ${devices} device(s); drain it first or delete with force`,
      );
    }
    const applied = devices > 0 ? await forceRemoveDevices(trx, host.id, deps.clock.now()) : undefined;
    // Locked (after its devices) so no plan places a device on it while it goes.
    await lockHosts(trx, [host.id]);
    if (!req.force && (await countDevicesOnHost(trx, host.id)) > 0) {
      throw new FailedPreconditionError(`host ${JSON.stringify(host.id)} took a device meanwhile; try again`);
    }
    await deleteHostRow(trx, host.id);
    return applied;
  });
  if (released) deps.planner?.settle(released);
  deps.logger.info({ hostId: host.id, name: host.name, force: req.force }, 'host deleted');
  await tell(deps, 'disconnect', host.id, 'host deleted');
  return {};
}

export async function explainHostPlacement(
  deps: HostServiceDeps,
  req: ExplainPlacementRequest,
  context: HandlerContext,
) {
  const principal = principalOf(context);
  requireOperator(principal, 'explaining placement');
  return explainPlacement(deps.db, principal, req);
}

export function hostService(deps: HostServiceDeps): Partial<ServiceImpl<typeof HostService>> {
  return {
    enrollHost: (req, context) => enrollHost(deps, req, context),
    getHost: (req, context) => getHost(deps, req, context),
    listHosts: (req, context) => listHosts(deps, req, context),
    updateHost: (req, context) => updateHost(deps, req, context),
    cordonHost: (req, context) => cordonHost(deps, req, context),
    uncordonHost: (req, context) => uncordonHost(deps, req, context),
    drainHost: (req, context) => drainHost(deps, req, context),
    getDrainStatus: (req, context) => getDrainStatus(deps, req, context),
    revokeHostCredential: (req, context) => revokeHostCredential(deps, req, context),
    deleteHost: (req, context) => deleteHost(deps, req, context),
    explainPlacement: (req, context) => explainHostPlacement(deps, req, context),
  };
}
