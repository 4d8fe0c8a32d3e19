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
