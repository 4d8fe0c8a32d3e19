// Dry runs (AIP-163 validate_only). A dry run takes the real call's own path inside one transaction
// and rolls it back at the end, so it refuses exactly what the real call refuses (the same reads,
// locks, quota admission and placement) and leaves nothing behind in the database. What happens
// outside the transaction (telling agents, caches, metrics, the audit row) is the handler's to skip.
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../store/schema.js';

/** Carries a dry run's answer out of the transaction it rolls back. */
class RolledBack<T> extends Error {
  constructor(readonly value: T) {
    super('validate_only: rolled back');
  }
}

/**
 * Runs `run` in a transaction that commits, or with `validateOnly` rolls back once `run` returned
 * (its answer is returned all the same). Errors are thrown either way.
 */
export async function transact<T>(
  db: Kysely<Database>,
  validateOnly: boolean,
  run: (trx: Transaction<Database>) => Promise<T>,
): Promise<T> {
  if (!validateOnly) return db.transaction().execute(run);
  try {
    await db.transaction().execute(async (trx) => {
      throw new RolledBack(await run(trx));
    });
  } catch (error) {
    if (error instanceof RolledBack) return error.value as T;
    throw error;
  }
  throw new Error('a validate_only transaction committed');
}

/** Whether an API request asks for a dry run (its message has validate_only set). */
export function isValidateOnly(message: unknown): boolean {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { validateOnly?: unknown }).validateOnly === true
  );
}
