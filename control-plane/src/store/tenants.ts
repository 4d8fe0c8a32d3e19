// Writes of the `tenant` and `quota` tables. A tenant is created with its quota row (every limit
// unset), so quota admission and SetQuota lock rows that always exist (tenants/admission.ts).
import { type Insertable, type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import type { Database, QuotaTable, TenantTable } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

export async function insertTenant(
  trx: Db,
  row: Insertable<TenantTable>,
  options: { ifAbsent?: boolean } = {},
) {
  let insert = trx.insertInto('tenant').values(row);
  if (options.ifAbsent) insert = insert.onConflict((oc) => oc.column('id').doNothing());
  await insert.execute();
  await trx
    .insertInto('quota')
    .values({ tenant_id: row.id, update_time: row.update_time })
    .onConflict((oc) => oc.column('tenant_id').doNothing())
    .execute();
}

/**
 * Locks the quota rows of the tenant and its ancestors, in tenant id order (the order admission
 * takes them in), and returns them.
 */
export async function lockQuotaPath(
  trx: Transaction<Database>,
  tenantId: string,
): Promise<Selectable<QuotaTable>[]> {
  const result = await sql<Selectable<QuotaTable>>`
    with recursive up(id, parent_id) as (
      select id, parent_id from tenant where id = ${tenantId}
      union all
      select t.id, t.parent_id from tenant t join up on t.id = up.parent_id
    )
    select q.* from quota q join up on up.id = q.tenant_id
    order by q.tenant_id
    for update of q`.execute(trx);
  return result.rows;
}

/** The quota rows of the tenant's descendants (not the tenant itself). */
export async function descendantQuotas(db: Db, tenantId: string): Promise<Selectable<QuotaTable>[]> {
  const result = await sql<Selectable<QuotaTable>>`
    with recursive sub(id) as (
      select id from tenant where parent_id = ${tenantId} and delete_time is null
      union all
      select t.id from tenant t join sub on t.parent_id = sub.id where t.delete_time is null
    )
    select q.* from quota q join sub on sub.id = q.tenant_id`.execute(db);
  return result.rows;
}
