import { randomBytes } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { newId } from '../ids.js';
import type { Logger } from '../logger.js';
import type { Database } from '../store/schema.js';
import { insertTenant } from '../store/tenants.js';
import { hashPassword } from '../users/passwords.js';
import { createApiKey } from './api-keys.js';

export const PLATFORM_TENANT_ID = 'platform';
export const BOOTSTRAP_KEY_FILE = 'bootstrap-admin-key';
export const BOOTSTRAP_PASSWORD_FILE = 'bootstrap-admin-password';
export const BOOTSTRAP_ADMIN_EMAIL = 'admin@localhost';

async function writeSecret(dataDir: string, name: string, secret: string): Promise<string> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, name);
  await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'w' });
  await chmod(file, 0o600);
  return file;
}

/**
 * While no web user exists: creates admin@localhost, platform_admin of the platform tenant, with a
 * random password written to a 0600 file in the data dir. Returns the password on that start only.
 */
export async function bootstrapAdminUser(
  db: Kysely<Database>,
  dataDir: string,
  logger: Logger,
): Promise<string | undefined> {
  const anyUser = await db.selectFrom('web_user').select('id').limit(1).executeTakeFirst();
  if (anyUser) return undefined;
  const password = randomBytes(18).toString('base64url');
  const inserted = await db
    .insertInto('web_user')
    .values({
      id: newId('usr'),
      tenant_id: PLATFORM_TENANT_ID,
      email: BOOTSTRAP_ADMIN_EMAIL,
      display_name: 'admin',
      role: 'platform_admin',
      password_hash: await hashPassword(password),
    })
    // Two replicas starting together: one creates it, the other finds the email taken.
    .onConflict((oc) => oc.column('email').doNothing())
    .returning('id')
    .executeTakeFirst();
  if (!inserted) return undefined;
  const file = await writeSecret(dataDir, BOOTSTRAP_PASSWORD_FILE, password);
  logger.warn(
    { file, email: BOOTSTRAP_ADMIN_EMAIL },
    'created the first web user; its password is written only to this file',
  );
  return password;
}

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
  const file = await writeSecret(dataDir, BOOTSTRAP_KEY_FILE, token);
  logger.warn(
    { file },
    'created the platform tenant and a bootstrap admin API key; it is written only to this file',
  );
  return token;
}
