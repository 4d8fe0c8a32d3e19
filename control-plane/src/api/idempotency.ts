import { createHash } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { InvalidArgumentError } from '../errors.js';
import type { Database } from '../store/schema.js';

export interface IdempotencyScope {
  tenantId: string;
  method: string;
  /** The request's request_id; empty means no idempotency. */
  key: string;
  /** The request, hashed so one key cannot be replayed for a different request. */
  request: unknown;
}

function hashOf(request: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify(request, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)))
    .digest('hex');
}

/**
 * Runs `run` in a transaction, once per (tenant, method, key). The key row is inserted first in the
 * same transaction: a concurrent retry blocks on it until the first commits, then reads the stored
 * response; if the first rolls back, the retry runs for real. A key reused with another request is
 * INVALID_ARGUMENT.
 */
export async function idempotent<T>(
  db: Kysely<Database>,
  scope: IdempotencyScope,
  run: (trx: Transaction<Database>) => Promise<T>,
  codec: { save: (value: T) => unknown; load: (saved: unknown) => T },
): Promise<T> {
  if (!scope.key) return db.transaction().execute(run);
  checkKey(scope.key);
  return db.transaction().execute((trx) => idempotentIn(trx, scope, run, codec));
}

function checkKey(key: string): void {
  if (key.length > 128) throw new InvalidArgumentError('request_id', key, 'must be at most 128 characters');
}

/** idempotent() inside the caller's transaction (a group-committed plan runs in a shared one). */
export async function idempotentIn<T>(
  trx: Transaction<Database>,
  scope: IdempotencyScope,
  run: (trx: Transaction<Database>) => Promise<T>,
  codec: { save: (value: T) => unknown; load: (saved: unknown) => T },
): Promise<T> {
  if (!scope.key) return run(trx);
  checkKey(scope.key);
  const requestHash = hashOf(scope.request);
  const claimed = await trx
    .insertInto('idempotency_key')
    .values({
      tenant_id: scope.tenantId,
      method: scope.method,
      key: scope.key,
      request_hash: requestHash,
      response: 'null',
    })
    .onConflict((oc) => oc.columns(['tenant_id', 'method', 'key']).doNothing())
    .returning('key')
    .executeTakeFirst();
  if (!claimed) {
    const row = await trx
      .selectFrom('idempotency_key')
      .select(['request_hash', 'response'])
      .where('tenant_id', '=', scope.tenantId)
      .where('method', '=', scope.method)
      .where('key', '=', scope.key)
      .executeTakeFirstOrThrow();
    if (row.request_hash !== requestHash) {
      throw new InvalidArgumentError('request_id', scope.key, 'was already used for a different request');
    }
    return codec.load(row.response);
  }
  const result = await run(trx);
  await trx
    .updateTable('idempotency_key')
    .set({ response: JSON.stringify(codec.save(result)) })
    .where('tenant_id', '=', scope.tenantId)
    .where('method', '=', scope.method)
    .where('key', '=', scope.key)
    .execute();
  return result;
}

/** What a key claim found: the key is this request's now, or an earlier response to replay. */
export type Claim = { claimed: true } | { claimed: false; saved: unknown };

/**
 * Claims many keys in two statements (one insert, one read of those already taken): the
 * group-committed form of idempotentIn's first step. A key reused with another request is refused.
 */
export async function claimKeys(
  trx: Transaction<Database>,
  scopes: readonly IdempotencyScope[],
): Promise<(Claim | InvalidArgumentError)[]> {
  if (scopes.length === 0) return [];
  for (const s of scopes) checkKey(s.key);
  const hashes = scopes.map((s) => hashOf(s.request));
  const ident = (s: Pick<IdempotencyScope, 'tenantId' | 'method' | 'key'>) =>
    JSON.stringify([s.tenantId, s.method, s.key]);
  const claimed = await trx
    .insertInto('idempotency_key')
    .values(
      scopes.map((s, i) => ({
        tenant_id: s.tenantId,
        method: s.method,
        key: s.key,
        request_hash: hashes[i] ?? '',
        response: 'null',
      })),
    )
    .onConflict((oc) => oc.columns(['tenant_id', 'method', 'key']).doNothing())
    .returning(['tenant_id', 'method', 'key'])
    .execute();
  const mine = new Set(claimed.map((r) => ident({ tenantId: r.tenant_id, method: r.method, key: r.key })));
  const taken = scopes.filter((s) => !mine.has(ident(s)));
  const stored = new Map<string, { request_hash: string; response: unknown }>();
  if (taken.length > 0) {
    const rows = await trx
      .selectFrom('idempotency_key')
      .select(['tenant_id', 'method', 'key', 'request_hash', 'response'])
      .where((eb) =>
        eb.or(
          taken.map((s) =>
            eb.and([eb('tenant_id', '=', s.tenantId), eb('method', '=', s.method), eb('key', '=', s.key)]),
          ),
        ),
      )
      .execute();
    for (const r of rows) stored.set(ident({ tenantId: r.tenant_id, method: r.method, key: r.key }), r);
  }
  return scopes.map((s, i) => {
    if (mine.has(ident(s))) return { claimed: true };
    const row = stored.get(ident(s));
    if (!row || row.request_hash !== hashes[i]) {
      return new InvalidArgumentError('request_id', s.key, 'was already used for a different request');
    }
    return { claimed: false, saved: row.response };
  });
}

/** Gives back keys claimed by requests that were refused (they may be retried as they are). */
export async function releaseKeys(
  trx: Transaction<Database>,
  scopes: readonly IdempotencyScope[],
): Promise<void> {
  if (scopes.length === 0) return;
  await trx
    .deleteFrom('idempotency_key')
    .where((eb) =>
      eb.or(
        scopes.map((s) =>
          eb.and([eb('tenant_id', '=', s.tenantId), eb('method', '=', s.method), eb('key', '=', s.key)]),
        ),
      ),
    )
    .execute();
}

/** Stores the responses of requests whose keys were claimed, one statement per response. */
export async function saveResponses(
  trx: Transaction<Database>,
  saved: readonly { scope: IdempotencyScope; response: unknown }[],
): Promise<void> {
  for (const { scope, response } of saved) {
    await trx
      .updateTable('idempotency_key')
      .set({ response: JSON.stringify(response) })
      .where('tenant_id', '=', scope.tenantId)
      .where('method', '=', scope.method)
      .where('key', '=', scope.key)
      .execute();
  }
}
