// Where "statement closed" is emitted. Called once per statement, inside the transaction that
// stores it, so an event written here (an outbox row) commits with the statement or not at all.
import type { Selectable, Transaction } from 'kysely';
import type { Database, StatementTable } from '../store/schema.js';

/**
 * INTEGRATION POINT (webhooks): enqueue the "statement closed" event for `statement.tenant_id`
 * here, in `trx`. Never called for a statement that was already closed (a repeated close).
 */
export async function onStatementClosed(
  _trx: Transaction<Database>,
  _statement: Selectable<StatementTable>,
): Promise<void> {}
