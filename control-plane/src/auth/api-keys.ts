import { createHash, timingSafeEqual } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import { InvalidArgumentError, NotFoundError, quote, UnauthenticatedError } from '../errors.js';
import { newId, newSecret } from '../ids.js';
import type { Logger } from '../logger.js';
import type { Database, Role } from '../store/schema.js';
import type { AuthCache } from './auth-cache.js';
import type { Principal } from './principal.js';

const ROLES: readonly Role[] = ['platform_admin', 'ops', 'tenant_admin', 'tenant_user'];

/** Roles with rights over the whole fleet: they exist only on the platform tenant (api_key.proto). */
export const FLEET_ROLES: readonly Role[] = ['platform_admin', 'ops'];

/**
 * The role a key acts with. A fleet role stored on a tenant other than the platform's (keys minted
 * before creation refused them) acts as tenant_admin: within its own subtree every fleet role was
 * already at least tenant_admin, so the key keeps what it could rightly do there and loses only the
 * fleet-wide rights the proto never allowed it. Refusing it outright would cut off a reseller's
 * working integration for a mistake made by whoever minted the key.
 */
export function effectiveRole(role: Role, tenantKind: string): Role {
  return FLEET_ROLES.includes(role) && tenantKind !== 'platform' ? 'tenant_admin' : role;
}

// Far above `<key id>.<secret>` as minted; a longer header is refused before any query.
const MAX_TOKEN_CHARS = 256;

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** The presented token is `<key id>.<secret>`; only sha256(secret) is stored. */
export function formatToken(keyId: string, secret: string): string {
  return `${keyId}.${secret}`;
}

export interface NewApiKey {
  tenantId: string;
  role: Role;
  displayName: string;
  expireTime?: Date | undefined;
}

/** Creates a key; the returned token is shown once and never stored. */
export async function createApiKey(
  db: Kysely<Database>,
  input: NewApiKey,
): Promise<{ id: string; token: string }> {
  if (!ROLES.includes(input.role))
    throw new InvalidArgumentError('role', input.role, `must be one of ${ROLES}`);
  if (input.expireTime && input.expireTime.getTime() <= Date.now()) {
    throw new InvalidArgumentError('expire_time', input.expireTime.toISOString(), 'must be in the future');
  }
  const tenant = await db
    .selectFrom('tenant')
    .select('kind')
    .where('id', '=', input.tenantId)
    .executeTakeFirst();
  if (!tenant) throw new NotFoundError('tenant', input.tenantId);
  if (FLEET_ROLES.includes(input.role) && tenant.kind !== 'platform') {
    throw new InvalidArgumentError(
      'role',
      input.role,
      `is a fleet-wide role, only for keys of the platform tenant; tenant ${quote(input.tenantId)} is a ${tenant.kind}`,
    );
  }
  const id = newId('key');
  const secret = newSecret('cpk');
  await db
    .insertInto('api_key')
    .values({
      id,
      tenant_id: input.tenantId,
      role: input.role,
      display_name: input.displayName,
      secret_hash: hashSecret(secret),
      expire_time: input.expireTime ?? null,
    })
    .execute();
  return { id, token: formatToken(id, secret) };
}

/** The ids of the tenant and all its descendants, as a subquery to use inside another statement. */
export function tenantSubtreeQuery(tenantId: string) {
  return sql<{ id: string }>`(
    with recursive sub(id) as (
      select id from tenant where id = ${tenantId} and delete_time is null
      union all
      select t.id from tenant t join sub on t.parent_id = sub.id where t.delete_time is null
    )
    select id from sub)`;
}

/** The tenant and all its descendants (a reseller sees its customers). */
export async function tenantSubtree(db: Kysely<Database>, tenantId: string): Promise<string[]> {
  const result = await sql<{ id: string }>`select id from ${tenantSubtreeQuery(tenantId)} as subtree`.execute(
    db,
  );
  return result.rows.map((r) => r.id);
}

/** True when the tenant or one of its ancestors is suspended: its keys are refused. */
export async function suspendedOnPath(db: Kysely<Database>, tenantId: string): Promise<boolean> {
  const result = await sql<{ n: number }>`
    with recursive up(id, parent_id, state) as (
      select id, parent_id, state from tenant where id = ${tenantId}
      union all
      select t.id, t.parent_id, t.state from tenant t join up on t.id = up.parent_id
    )
    select count(*) as n from up where state = 'suspended'`.execute(db);
  return Number(result.rows[0]?.n ?? 0) > 0;
}

/**
 * How stale a key's recorded last use may get before a call rewrites it: the API reports it to the
 * minute, and a busy key must not cost a write per call.
 */
export const KEY_USE_RESOLUTION_MS = 60_000;

/**
 * Records the use when the recorded one is at or before `staleBefore`. The condition is checked again
 * in the update so that concurrent calls that all saw a stale value write once, and a late write
 * never moves the time backwards.
 */
async function recordKeyUse(
  db: Kysely<Database>,
  keyId: string,
  now: Date,
  staleBefore: Date,
): Promise<void> {
  await db
    .updateTable('api_key')
    .set({ last_used_time: now })
    .where('id', '=', keyId)
    .where((eb) => eb.or([eb('last_used_time', 'is', null), eb('last_used_time', '<=', staleBefore)]))
    .execute();
}

export interface AuthenticateOptions {
  /** The time of the call, for expiry and the recorded last use; defaults to now. */
  now?: Date;
  /** Where a failed last-use write is reported; it never fails the call. */
  logger: Logger;
  /** Answers kept between calls (auth-cache.ts); absent, every call reads the database. */
  cache?: AuthCache | undefined;
}

/**
 * Records the key's use in the background when the recorded one is a use window old, and says once
 * per window that a stored fleet role acts as tenant_admin.
 */
function noteUse(
  db: Kysely<Database>,
  key: { principal: Principal; storedRole: Role; lastUsedMs: number | null },
  now: Date,
  logger: Logger,
): boolean {
  const staleBefore = new Date(now.getTime() - KEY_USE_RESOLUTION_MS);
  if (key.lastUsedMs !== null && key.lastUsedMs > staleBefore.getTime()) return false;
  const { actor: keyId, tenantId, role } = key.principal;
  recordKeyUse(db, keyId, now, staleBefore).catch((err: unknown) =>
    logger.warn({ err, keyId }, 'recording API key use failed'),
  );
  if (role !== key.storedRole) {
    logger.warn(
      { keyId, tenantId, storedRole: key.storedRole, role },
      'API key holds a fleet-wide role outside the platform tenant; it acts as tenant_admin: mint a new key',
    );
  }
  return true;
}

/**
 * Resolves a bearer token to its principal, or throws UNAUTHENTICATED without saying which part
 * failed. A successful call records the key's use in the background.
 */
export async function authenticate(
  db: Kysely<Database>,
  token: string | undefined,
  options: AuthenticateOptions,
): Promise<Principal> {
  const now = options.now ?? new Date();
  const { cache, logger } = options;
  // Made only when thrown: an error's stack costs more than the rest of a successful check.
  const refused = () => new UnauthenticatedError('missing, malformed, unknown, expired or revoked API key');
  if (!token || token.length > MAX_TOKEN_CHARS) throw refused();
  const dot = token.indexOf('.');
  if (dot <= 0) throw refused();
  const keyId = token.slice(0, dot);
  const secretHash = hashSecret(token.slice(dot + 1));
  const hit = cache?.get(secretHash, keyId, now.getTime());
  if (hit) {
    if (noteUse(db, hit, now, logger)) hit.lastUsedMs = now.getTime();
    return hit.principal;
  }
  const generation = cache?.generation() ?? 0;
  const row = await db
    .selectFrom('api_key')
    .innerJoin('tenant', 'tenant.id', 'api_key.tenant_id')
    .select([
      'api_key.id',
      'api_key.tenant_id',
      'api_key.role',
      'api_key.secret_hash',
      'api_key.expire_time',
      'api_key.revoke_time',
      'api_key.last_used_time',
      'tenant.kind as tenant_kind',
    ])
    .where('api_key.id', '=', keyId)
    .executeTakeFirst();
  if (!row || row.revoke_time || (row.expire_time && row.expire_time <= now)) throw refused();
  const expected = Buffer.from(row.secret_hash, 'hex');
  const actual = Buffer.from(secretHash, 'hex');
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) throw refused();
  if (await suspendedOnPath(db, row.tenant_id)) throw refused();
  const visibleTenants = await tenantSubtree(db, row.tenant_id);
  if (visibleTenants.length === 0) throw refused();
  // Frozen: a cached principal is shared by every call the key makes until it is dropped.
  const principal: Principal = Object.freeze({
    actor: row.id,
    keyId: row.id,
    tenantId: row.tenant_id,
    role: effectiveRole(row.role, row.tenant_kind),
    visibleTenants: Object.freeze(visibleTenants),
  });
  const key = {
    principal,
    storedRole: row.role,
    expireMs: row.expire_time?.getTime() ?? null,
    lastUsedMs: row.last_used_time?.getTime() ?? null,
  };
  if (noteUse(db, key, now, logger)) key.lastUsedMs = now.getTime();
  cache?.set(secretHash, key, generation, now.getTime());
  return principal;
}
