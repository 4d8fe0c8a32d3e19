// The Hello check: the credential (`<credential id>.<secret>`, verified by hosts/credentials.ts)
// must be a live credential of the host the agent claims to be.
import type { Kysely } from 'kysely';
import { UnauthenticatedError } from '../errors.js';
import { verifyHostCredential } from '../hosts/credentials.js';
import type { Database } from '../store/schema.js';

/**
 * Checks that `credential` is a live credential of `hostId`. Throws UNAUTHENTICATED without saying
 * which part failed (unknown, revoked, wrong secret or another host's credential).
 */
export async function authenticateHost(
  db: Kysely<Database>,
  hostId: string,
  credential: string,
): Promise<void> {
  if (hostId && (await verifyHostCredential(db, hostId, credential))) return;
  throw new UnauthenticatedError(
    `unknown, revoked or mismatched credential for host ${JSON.stringify(hostId)}`,
  );
}
