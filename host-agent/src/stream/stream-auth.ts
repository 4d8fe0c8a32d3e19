// Who may join this host's sfu (a stream token) or open an ADB tunnel connection (an ADB tunnel
// token): a token the control plane signed (checked here, locally, with
// the public keys it sends down the agent stream: no round trip per join), for this host, and not
// revoked. Revocations arrive on the agent stream too (StreamRevocation) and are kept until no
// token they could refuse is still valid; the control plane resends those in force after every
// Hello, so a restarted agent forgets nothing that matters.
import {
  type AdbTunnelTokenClaims,
  type agentv1,
  type StreamTokenClaims,
  StreamTokenError,
  type StreamVerifyKey,
  verifyAdbTunnelToken,
  verifyStreamToken,
} from '@cphone/proto';

/** The longest a stream token lives (CreateStreamSession's ttl_seconds cap). */
export const MAX_TOKEN_LIFETIME_MS = 86_400_000;

export interface StreamAuthOptions {
  readonly hostId: string;
  /** Wall clock in ms (tests move it). */
  readonly now?: () => number;
  /** How long a join that comes before the first keys waits for them, in ms (default 5000). */
  readonly keysWaitMs?: number;
}

/** What a revocation ends among the sessions open now. */
export interface RevocationMatch {
  readonly sessionId?: string;
  readonly deviceId?: string;
  readonly tenantId?: string;
  readonly reason: string;
  readonly message: string;
}

interface Bar {
  /** Tokens issued before this (ms) are refused. */
  readonly issuedBefore: number;
  /** Dropped after this (ms): every token it could refuse has expired. */
  readonly until: number;
}

export class StreamAuth {
  readonly #hostId: string;
  readonly #now: () => number;
  #keys: readonly StreamVerifyKey[] = [];
  readonly #sessions = new Map<string, number>();
  readonly #devices = new Map<string, Bar>();
  readonly #tenants = new Map<string, Bar>();
  readonly #keysWaitMs: number;
  /** Woken by the first keys: joins that came before them wait a little rather than fail. */
  #keysArrived: (() => void)[] = [];

  constructor(options: StreamAuthOptions) {
    this.#hostId = options.hostId;
    this.#now = options.now ?? Date.now;
    this.#keysWaitMs = options.keysWaitMs ?? 5000;
  }

  /** Whether any key is held: until the first Welcome, joins wait (keysWaitMs), then are refused. */
  get ready(): boolean {
    return this.#keys.length > 0;
  }

  /** Replaces the keys (Welcome.stream_token_keys, StreamKeys): every key a token in force may use. */
  setKeys(keys: readonly agentv1.StreamTokenKey[]): void {
    this.#keys = keys
      .filter((k) => k.algorithm === '' || k.algorithm === 'Ed25519')
      .map((k) => ({ keyId: k.keyId, publicKey: k.publicKey }));
    if (this.ready) for (const wake of this.#keysArrived.splice(0)) wake();
  }

  /**
   * A viewer that rejoins the moment a restarted agent listens again comes before the agent's first
   * Welcome has brought the keys; it waits for them up to keysWaitMs instead of being refused.
   */
  async #keysReady(): Promise<boolean> {
    if (this.ready || this.#keysWaitMs <= 0) return this.ready;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.#keysWaitMs);
      this.#keysArrived.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    return this.ready;
  }

  /** Records a revocation; returns what to end among open sessions, or undefined if it names nothing. */
  revoke(revocation: agentv1.StreamRevocation): RevocationMatch | undefined {
    const now = this.#now();
    this.#prune(now);
    const issuedBefore = revocation.issuedBefore
      ? Number(revocation.issuedBefore.seconds) * 1000 + Math.floor(revocation.issuedBefore.nanos / 1e6)
      : now;
    const until = issuedBefore + MAX_TOKEN_LIFETIME_MS;
    const { sessionId, deviceId, tenantId } = revocation;
    if (!sessionId && !deviceId && !tenantId) return undefined;
    if (sessionId) this.#sessions.set(sessionId, now + MAX_TOKEN_LIFETIME_MS);
    // A session revocation refuses its own token only; a device or tenant one every older token.
    if (!sessionId && deviceId) raise(this.#devices, deviceId, { issuedBefore, until });
    if (!sessionId && !deviceId && tenantId) raise(this.#tenants, tenantId, { issuedBefore, until });
    return {
      ...(sessionId ? { sessionId } : {}),
      ...(deviceId ? { deviceId } : {}),
      ...(tenantId ? { tenantId } : {}),
      reason: revocation.reason || 'REVOKED',
      message: revocation.message || 'the stream session was ended',
    };
  }

  /** The claims of a token that may join this host's sfu now; StreamTokenError says why not. */
  async verify(token: string): Promise<StreamTokenClaims> {
    const claims = await verifyStreamToken(token, await this.#keysNow(), { now: this.#now() });
    this.#admit(claims.sessionId, claims, { token: 'stream token', grant: 'stream session' });
    return claims;
  }

  /**
   * The claims of an ADB tunnel token that may open a connection on this host now (a stream token
   * is refused, and the other way round); StreamTokenError says why not.
   */
  async verifyAdbTunnel(token: string): Promise<AdbTunnelTokenClaims> {
    const claims = await verifyAdbTunnelToken(token, await this.#keysNow(), { now: this.#now() });
    this.#admit(claims.tunnelId, claims, { token: 'ADB tunnel token', grant: 'ADB tunnel' });
    return claims;
  }

  async #keysNow(): Promise<readonly StreamVerifyKey[]> {
    if (!(await this.#keysReady()))
      throw new StreamTokenError('this host has not received the control plane’s keys yet');
    return this.#keys;
  }

  /** A verified token's host, and whether a revocation refuses it. */
  #admit(
    id: string,
    claims: { hostId: string; deviceId: string; tenantId: string; issuedAt?: number },
    what: { token: string; grant: string },
  ): void {
    if (claims.hostId !== this.#hostId) throw new StreamTokenError(`the ${what.token} is for another host`);
    if (this.#sessions.has(id)) throw new StreamTokenError(`the ${what.grant} was revoked`);
    const issuedMs = (claims.issuedAt ?? 0) * 1000;
    const device = this.#devices.get(claims.deviceId);
    const tenant = this.#tenants.get(claims.tenantId);
    if ((device && issuedMs < device.issuedBefore) || (tenant && issuedMs < tenant.issuedBefore)) {
      throw new StreamTokenError(`the ${what.token} was revoked`);
    }
  }

  #prune(now: number): void {
    for (const [id, until] of this.#sessions) if (until <= now) this.#sessions.delete(id);
    for (const map of [this.#devices, this.#tenants]) {
      for (const [id, bar] of map) if (bar.until <= now) map.delete(id);
    }
  }
}

function raise(map: Map<string, Bar>, id: string, bar: Bar): void {
  const old = map.get(id);
  if (!old || old.issuedBefore < bar.issuedBefore) map.set(id, bar);
}
