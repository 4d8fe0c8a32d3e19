// Host credentials: what an agent presents in Hello (and as a bearer token when it downloads
// artifacts). Like API keys, the credential is `<credential id>.<secret>` and only sha256(secret)
// is stored, so the id finds the row in one indexed lookup and the secret is compared in constant
// time. A host may hold several credentials during a rotation; any one not revoked is accepted.
import { timingSafeEqual } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { hashSecret } from '../auth/api-keys.js';
import { newId, newSecret } from '../ids.js';
import type { Database } from '../store/schema.js';

type Db = Kysely<Database> | Transaction<Database>;

/** The string the agent is configured with: `<credential id>.<secret>`, e.g. `hcred_01….cph_…`. */
export function formatHostCredential(credentialId: string, secret: string): string {
  return `${credentialId}.${secret}`;
}

/** Splits a presented credential; undefined when it is not of the form `<id>.<secret>`. */
export function parseHostCredential(presented: string): { credentialId: string; secret: string } | undefined {
  const dot = presented.indexOf('.');
  if (dot <= 0 || dot === presented.length - 1) return undefined;
  return { credentialId: presented.slice(0, dot), secret: presented.slice(dot + 1) };
}

/**
 * Issues a new credential for the host inside the caller's transaction. The returned string is
 * shown once (EnrollHost, RevokeHostCredential with issue_new) and never stored.
 */
export async function issueHostCredential(
  trx: Db,
  hostId: string,
): Promise<{ credentialId: string; credential: string }> {
  const credentialId = newId('hcred');
  const secret = newSecret('cph');
  await trx
    .insertInto('host_credential')
    .values({ id: credentialId, host_id: hostId, secret_hash: hashSecret(secret) })
    .execute();
  return { credentialId, credential: formatHostCredential(credentialId, secret) };
}

/**
 * The host a presented credential belongs to, or undefined when it is malformed, unknown, revoked
 * or does not match. Callers must not tell these cases apart to the presenter.
 */
export async function authenticateHostCredential(
  db: Db,
  presented: string | undefined,
): Promise<{ hostId: string; credentialId: string } | undefined> {
  if (!presented) return undefined;
  const parsed = parseHostCredential(presented);
  if (!parsed) return undefined;
  const row = await db
    .selectFrom('host_credential')
    .select(['id', 'host_id', 'secret_hash', 'revoke_time'])
    .where('id', '=', parsed.credentialId)
    .executeTakeFirst();
  if (!row || row.revoke_time) return undefined;
  const expected = Buffer.from(row.secret_hash, 'hex');
  const actual = Buffer.from(hashSecret(parsed.secret), 'hex');
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return undefined;
  return { hostId: row.host_id, credentialId: row.id };
}

/** True when `presented` is a valid, unrevoked credential of `hostId` (the gateway's Hello check). */
export async function verifyHostCredential(db: Db, hostId: string, presented: string): Promise<boolean> {
  const found = await authenticateHostCredential(db, presented);
  return found?.hostId === hostId;
}

/** Revokes every live credential of the host; returns how many were revoked. */
export async function revokeHostCredentials(trx: Db, hostId: string, now: Date): Promise<number> {
  const result = await trx
    .updateTable('host_credential')
    .set({ revoke_time: now })
    .where('host_id', '=', hostId)
    .where('revoke_time', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}
