// Authentication answers kept for a short time, so a busy key costs no query per call. Every change
// that would alter an answer drops it at once (key revoked: that key; tenant suspended, reactivated,
// created or deleted: everything, as such changes are rare and a refill is one miss per key) here
// and, through the cluster's NOTIFY, on every other replica. The TTL bounds what a lost
// notification could leave stale; a lost database session clears the cache (server.ts).
import type { Logger } from '../logger.js';
import type { Role } from '../store/schema.js';
import type { Principal } from './principal.js';

/** What invalidates cached answers: one key, or every answer that depends on the tenant tree. */
export type AuthChange = { kind: 'key'; keyId: string } | { kind: 'tenants' };

export interface CachedKey {
  readonly principal: Principal;
  /** The role stored on the key (the principal's may be lowered, see effectiveRole). */
  readonly storedRole: Role;
  /** When the key expires (ms since the epoch), checked on every hit; null when it never does. */
  readonly expireMs: number | null;
  /** The last use recorded in the database (ms), moved forward when a hit records a new one. */
  lastUsedMs: number | null;
}

interface Entry extends CachedKey {
  readonly cachedAtMs: number;
}

export interface AuthCacheOptions {
  /** How long an answer is kept (ms); 0 keeps nothing. */
  readonly ttlMs: number;
  /** Most answers kept; the least recently used goes first. Default 10000. */
  readonly maxEntries?: number | undefined;
  /** Tells the other replicas of a change (absent in a single process). */
  readonly publish?: ((change: AuthChange) => Promise<void>) | undefined;
  /** Counts each lookup of an enabled cache. */
  readonly onLookup?: ((outcome: 'hit' | 'miss') => void) | undefined;
  readonly logger: Logger;
}

export class AuthCache {
  // Keyed by sha256 of the presented secret, never the secret itself; a Map iterates in insertion
  // order, so re-inserting on a hit makes its first entry the least recently used.
  readonly #entries = new Map<string, Entry>();
  // Bumped by every invalidation: a miss that read the database before one does not store its answer.
  #generation = 0;
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #log: Logger;

  constructor(private readonly options: AuthCacheOptions) {
    const { ttlMs, maxEntries = 10_000, logger } = options;
    this.#ttlMs = ttlMs;
    this.#maxEntries = Math.max(1, maxEntries);
    this.#log = logger.child({ module: 'auth-cache' });
  }

  get enabled(): boolean {
    return this.#ttlMs > 0;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The answer for this key id and secret hash at `nowMs`, if kept, fresh and the key not expired. */
  get(secretHash: string, keyId: string, nowMs: number): CachedKey | undefined {
    if (!this.enabled) return undefined;
    const entry = this.#entries.get(secretHash);
    const fresh =
      entry !== undefined &&
      entry.principal.keyId === keyId &&
      nowMs - entry.cachedAtMs < this.#ttlMs &&
      (entry.expireMs === null || nowMs < entry.expireMs);
    if (!fresh) {
      if (entry) this.#entries.delete(secretHash);
      this.options.onLookup?.('miss');
      return undefined;
    }
    this.#entries.delete(secretHash);
    this.#entries.set(secretHash, entry);
    this.options.onLookup?.('hit');
    return entry;
  }

  /** Taken before a miss reads the database, handed back to `set`. */
  generation(): number {
    return this.#generation;
  }

  /** Keeps an answer read at `generation`, unless something was invalidated since. */
  set(secretHash: string, answer: CachedKey, generation: number, nowMs: number): void {
    if (!this.enabled || generation !== this.#generation) return;
    this.#entries.delete(secretHash);
    while (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
    this.#entries.set(secretHash, { ...answer, cachedAtMs: nowMs });
  }

  /**
   * A committed change: drops the answers it affects here, then tells every other replica and
   * resolves once `publish` does (server.ts: once this replica has heard its own NOTIFY back, which
   * PostgreSQL hands to every replica's listening session at the same time). A failed NOTIFY is
   * logged; the TTL bounds the staleness left.
   */
  async changed(change: AuthChange): Promise<void> {
    this.apply(change);
    if (!this.options.publish) return;
    await this.options
      .publish(change)
      .catch((err: unknown) =>
        this.#log.error({ err, change }, 'telling the other replicas of an auth change failed'),
      );
  }

  /** Drops the answers a change affects, on this replica only (a change told by another). */
  apply(change: AuthChange): void {
    this.#generation++;
    if (change.kind === 'tenants') {
      this.#entries.clear();
      return;
    }
    for (const [hash, entry] of this.#entries) {
      if (entry.principal.keyId === change.keyId) this.#entries.delete(hash);
    }
  }

  /** Drops everything (changes told while this replica could not hear may be lost). */
  clear(): void {
    this.apply({ kind: 'tenants' });
  }
}
