// Failed sign-ins counted per account (email) and per client address in a table, so the limits
// hold across replicas. A success clears the account's count; the address's count runs out with
// the window.
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.js';

export interface ThrottleLimits {
  readonly windowMs: number;
  readonly maxPerAccount: number;
  readonly maxPerAddress: number;
}

type Scope = 'email' | 'address';

/** How long (ms) until `subject` is under its limit again; 0 when it is now. */
async function waitFor(
  db: Kysely<Database>,
  scope: Scope,
  subject: string,
  max: number,
  now: Date,
  windowMs: number,
): Promise<number> {
  if (!subject) return 0;
  const since = new Date(now.getTime() - windowMs);
  // The failures that keep it over the limit: when the oldest of the newest `max` leaves the
  // window, one more attempt is allowed.
  const rows = await db
    .selectFrom('sign_in_failure')
    .select('create_time')
    .where('scope', '=', scope)
    .where('subject', '=', subject)
    .where('create_time', '>', since)
    .orderBy('create_time', 'desc')
    .limit(max)
    .execute();
  const oldest = rows[max - 1];
  if (!oldest) return 0;
  return Math.max(1, oldest.create_time.getTime() + windowMs - now.getTime());
}

/** The longer wait of the account's and the address's, 0 when neither is over its limit. */
export async function signInWait(
  db: Kysely<Database>,
  attempt: { email: string; address: string },
  now: Date,
  limits: ThrottleLimits,
): Promise<number> {
  const [account, address] = await Promise.all([
    waitFor(db, 'email', attempt.email, limits.maxPerAccount, now, limits.windowMs),
    waitFor(db, 'address', attempt.address, limits.maxPerAddress, now, limits.windowMs),
  ]);
  return Math.max(account, address);
}

/** Records a failure against both, and drops failures that have left the window. */
export async function recordFailure(
  db: Kysely<Database>,
  attempt: { email: string; address: string },
  now: Date,
  windowMs: number,
): Promise<void> {
  const rows: { scope: 'email' | 'address'; subject: string; create_time: Date }[] = [
    { scope: 'email', subject: attempt.email, create_time: now },
  ];
  if (attempt.address) rows.push({ scope: 'address', subject: attempt.address, create_time: now });
  await db.insertInto('sign_in_failure').values(rows).execute();
  await db
    .deleteFrom('sign_in_failure')
    .where('create_time', '<=', new Date(now.getTime() - windowMs))
    .execute();
}

/** A successful sign-in: the account's failures are forgiven. */
export async function clearAccountFailures(db: Kysely<Database>, email: string): Promise<void> {
  await db.deleteFrom('sign_in_failure').where('scope', '=', 'email').where('subject', '=', email).execute();
}
