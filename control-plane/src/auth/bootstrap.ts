import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import type { Logger } from '../logger.js';
import type { Database } from '../store/schema.js';
import { insertTenant } from '../store/tenants.js';
import { createApiKey } from './api-keys.js';

export const PLATFORM_TENANT_ID = 'platform';
export const BOOTSTRAP_KEY_FILE = 'bootstrap-admin-key';

/**
 * On the first start: creates the platform tenant and a platform-admin key, and writes the key once
 * to a 0600 file in the data dir. Later starts find the tenant and do nothing.
 */
export async function bootstrap(
  db: Kysely<Database>,
  dataDir: string,
  logger: Logger,
): Promise<string | undefined> {
  const existing = await db
    .selectFrom('tenant')
    .select('id')
    .where('id', '=', PLATFORM_TENANT_ID)
    .executeTakeFirst();
  if (existing) return undefined;
  const token = await db.transaction().execute(async (trx) => {
    await insertTenant(trx, {
      id: PLATFORM_TENANT_ID,
      parent_id: null,
      kind: 'platform',
      display_name: 'Platform',
      update_time: new Date(),
    });
    return (
      await createApiKey(trx, {
        tenantId: PLATFORM_TENANT_ID,
        role: 'platform_admin',
        displayName: 'bootstrap admin',
      })
    ).token;
  });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, BOOTSTRAP_KEY_FILE);
  await writeFile(file, `${token}\n`, { mode: 0o600, flag: 'w' });
  await chmod(file, 0o600);
  logger.warn(
    { file },
    'created the platform tenant and a bootstrap admin API key; it is written only to this file',
  );
  return token;
}
