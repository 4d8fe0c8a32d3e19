// Whose resource an audited call touched. The API's handlers answer NOT_FOUND for another tenant's
// resource without saying whose it is; the audit writer looks the owner up afterwards, for a whole
// batch of rows at once (one query per resource type), so tenant A sees B's attempts on A's device
// and no call waits for the lookup.
import type { Kysely } from 'kysely';
import { PLATFORM_TENANT_ID } from '../auth/bootstrap.js';
import type { Database } from '../store/schema.js';

/** What the writer resolves: the resource, else the tenant the request named, else `fallback`. */
export interface AuditTarget {
  readonly type: string;
  readonly id: string;
  readonly tenantHint: string;
  /** The actor's tenant, or the platform for an anonymous caller. */
  readonly fallback: string;
}

/** Tables whose rows carry their owner's tenant, by resource type. */
const OWNER_TABLES = {
  device: 'device',
  api_key: 'api_key',
  image: 'image',
  user: 'web_user',
  upload: 'upload',
  stream_session: 'stream_session',
  invitation: 'invitation',
  session: 'web_session',
  webhook: 'webhook',
  price_book: 'price_book',
  statement: 'statement',
  webhook_event: 'webhook_event',
} as const satisfies Record<string, keyof Database>;

/** The target tenant of each target, in order. */
export async function resolveTargetTenants(
  db: Kysely<Database>,
  targets: readonly AuditTarget[],
): Promise<string[]> {
  const owners = new Map<string, string>();
  const byType = new Map<string, Set<string>>();
  const tenantIds = new Set<string>();
  for (const t of targets) {
    if (t.type === 'tenant' && t.id) tenantIds.add(t.id);
    else if (t.id && t.type in OWNER_TABLES) {
      const ids = byType.get(t.type) ?? new Set<string>();
      ids.add(t.id);
      byType.set(t.type, ids);
    }
    if (t.tenantHint) tenantIds.add(t.tenantHint);
  }
  for (const [type, ids] of byType) {
    const table = OWNER_TABLES[type as keyof typeof OWNER_TABLES];
    const rows = await db
      .selectFrom(table)
      .select(['id', 'tenant_id'])
      .where('id', 'in', [...ids])
      .execute();
    // A platform image (no tenant) is the platform's.
    for (const row of rows) owners.set(`${type}:${row.id}`, row.tenant_id ?? PLATFORM_TENANT_ID);
  }
  const known = new Set<string>();
  if (tenantIds.size > 0) {
    const rows = await db
      .selectFrom('tenant')
      .select('id')
      .where('id', 'in', [...tenantIds])
      .execute();
    for (const row of rows) known.add(row.id);
  }
  return targets.map((t) => {
    if (t.type === 'host') return PLATFORM_TENANT_ID;
    const owner =
      t.type === 'tenant' ? (known.has(t.id) ? t.id : undefined) : owners.get(`${t.type}:${t.id}`);
    if (owner) return owner;
    if (t.tenantHint && known.has(t.tenantHint)) return t.tenantHint;
    return t.fallback;
  });
}
