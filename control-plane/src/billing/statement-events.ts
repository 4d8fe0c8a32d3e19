// Where "statement closed" is emitted. Called once per statement, inside the transaction that
// stores it, so the event (an outbox row) commits with the statement or not at all.
import { WebhookEventType } from '@cphone/proto';
import type { Selectable, Transaction } from 'kysely';
import type { Database, StatementTable } from '../store/schema.js';
import { enqueueWebhookEvent } from '../webhooks/outbox.js';

/** Enqueues STATEMENT_CLOSED for the statement's tenant; never called for a repeated close. */
export async function onStatementClosed(
  trx: Transaction<Database>,
  statement: Selectable<StatementTable>,
): Promise<void> {
  await enqueueWebhookEvent(
    trx,
    {
      tenantId: statement.tenant_id,
      type: WebhookEventType.STATEMENT_CLOSED,
      statement: {
        tenantId: statement.tenant_id,
        month: statement.month,
        statementId: statement.id,
        totalAmount: statement.total,
        currency: statement.currency,
      },
    },
    { now: statement.close_time },
  );
}
