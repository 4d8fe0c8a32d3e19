// Stream tokens: what the control plane signs when it grants a stream session, and what a host
// agent's sfu checks on every join (and ADB tunnel tokens, which its tunnel endpoint checks on every
// connection, signed with the same keys for another audience), locally, with the control plane's public keys (sent down the
// agent stream). A compact JWS (JWT) signed with Ed25519 ("EdDSA"), through `jose`, the well-kept
// JOSE library: the header names the key (kid) so keys can rotate with an overlap.
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';

export const STREAM_TOKEN_ISSUER = 'cphone-control-plane';
export const STREAM_TOKEN_AUDIENCE = 'cphone-sfu';
/** The audience of ADB tunnel tokens: the agent's tunnel endpoint. */
export const ADB_TUNNEL_TOKEN_AUDIENCE = 'cphone-adb-tunnel';

export type StreamRightsName = 'view' | 'control';

/** What a stream token grants. */
export interface StreamTokenClaims {
  /** The session (the token's jti): one viewer connection, resumable while the token is valid. */
  readonly sessionId: string;
  readonly deviceId: string;
  /** The host whose sfu serves the device: an sfu refuses tokens for other hosts. */
  readonly hostId: string;
  readonly tenantId: string;
  readonly rights: StreamRightsName;
  /** When the token stops admitting joins (seconds since the epoch). */
  readonly expiresAt: number;
  /**
   * When it was signed (seconds since the epoch, with a fraction: a revocation's issued_before is
   * compared to it to the millisecond). Signing sets it to now when unset.
   */
  readonly issuedAt?: number;
}

/** One signing key: the control plane holds the private part. */
export interface StreamSigningKey {
  readonly keyId: string;
  readonly privateKey: KeyObject;
  /** The raw 32-byte Ed25519 public key, as agents receive it (StreamTokenKey.public_key). */
  readonly publicKey: Uint8Array;
}

/** A public key as agents receive it. */
export interface StreamVerifyKey {
  readonly keyId: string;
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
}

/** The raw public key of an Ed25519 private key (its SPKI DER ends with the 32 key bytes). */
export function rawPublicKey(privateKey: KeyObject): Uint8Array {
  const der = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  return new Uint8Array(der.subarray(der.length - 32));
}

/** A signing key from a PKCS#8 PEM (or DER) Ed25519 private key. */
export function signingKey(keyId: string, pkcs8: string | Buffer): StreamSigningKey {
  const privateKey = createPrivateKey(
    typeof pkcs8 === 'string' ? pkcs8 : { key: pkcs8, format: 'der', type: 'pkcs8' },
  );
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new Error(`stream signing key ${keyId} is ${privateKey.asymmetricKeyType}, not ed25519`);
  }
  return { keyId, privateKey, publicKey: rawPublicKey(privateKey) };
}

// The SPKI DER prefix of an Ed25519 public key; the 32 key bytes follow.
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function verifyKeyObject(key: StreamVerifyKey): KeyObject {
  return createPublicKey({
    key: Buffer.concat([ED25519_SPKI_PREFIX, Buffer.from(key.publicKey)]),
    format: 'der',
    type: 'spki',
  });
}

export async function signStreamToken(key: StreamSigningKey, claims: StreamTokenClaims): Promise<string> {
  return sign(key, STREAM_TOKEN_AUDIENCE, claims.sessionId, claims, {
    dev: claims.deviceId,
    host: claims.hostId,
    ten: claims.tenantId,
    rights: claims.rights,
  });
}

/** Signs a JWT for one audience (one purpose): a token of one audience is refused by the other. */
function sign(
  key: StreamSigningKey,
  audience: string,
  jti: string,
  times: { expiresAt: number; issuedAt?: number },
  payload: Record<string, string>,
): Promise<string> {
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'EdDSA', kid: key.keyId, typ: 'JWT' })
    .setIssuer(STREAM_TOKEN_ISSUER)
    .setAudience(audience)
    .setJti(jti)
    .setIssuedAt(times.issuedAt ?? Date.now() / 1000)
    .setExpirationTime(times.expiresAt)
    .sign(key.privateKey);
}

/** Why a token was refused; the message is safe to show the viewer. */
export class StreamTokenError extends Error {
  override readonly name = 'StreamTokenError';
}

/** A verified token's payload, with a reader of its required text claims. */
async function verified(
  token: string,
  keys: readonly StreamVerifyKey[],
  audience: string,
  what: string,
  now: number | undefined,
): Promise<{ payload: Record<string, unknown>; text(field: string): string }> {
  let kid: string | undefined;
  try {
    kid = decodeProtectedHeader(token).kid;
  } catch {
    throw new StreamTokenError(`the ${what} is malformed`);
  }
  const key = keys.find((k) => k.keyId === kid);
  if (!key) throw new StreamTokenError(`the ${what} is signed with a key this host does not hold`);
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, verifyKeyObject(key), {
      algorithms: ['EdDSA'],
      issuer: STREAM_TOKEN_ISSUER,
      audience,
      ...(now !== undefined ? { currentDate: new Date(now) } : {}),
    }));
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new StreamTokenError(
      code === 'ERR_JWT_EXPIRED' ? `the ${what} has expired` : `the ${what} is not valid`,
    );
  }
  const text = (field: string) => {
    const v = payload[field];
    if (typeof v !== 'string' || v === '') throw new StreamTokenError(`the ${what} lacks ${field}`);
    return v;
  };
  return { payload, text };
}

/**
 * Checks a token against the keys an agent holds and returns its claims; throws StreamTokenError
 * for a forged, expired, foreign or malformed one (an ADB tunnel token included). `now` (ms) is for
 * tests.
 */
export async function verifyStreamToken(
  token: string,
  keys: readonly StreamVerifyKey[],
  options: { now?: number } = {},
): Promise<StreamTokenClaims> {
  const { payload, text } = await verified(token, keys, STREAM_TOKEN_AUDIENCE, 'stream token', options.now);
  const rights = text('rights');
  if (rights !== 'view' && rights !== 'control')
    throw new StreamTokenError('the stream token names unknown rights');
  return {
    sessionId: text('jti'),
    deviceId: text('dev'),
    hostId: text('host'),
    tenantId: text('ten'),
    rights,
    expiresAt: Number(payload.exp),
    issuedAt: Number(payload.iat ?? 0),
  };
}

/**
 * What an ADB tunnel token grants: connections to one device's adbd through its host's agent. Signed
 * with the stream keys, for its own audience, so neither kind of token passes for the other.
 */
export interface AdbTunnelTokenClaims {
  /** The tunnel (the token's jti). */
  readonly tunnelId: string;
  readonly deviceId: string;
  /** The host whose agent carries the bytes: other hosts refuse the token. */
  readonly hostId: string;
  readonly tenantId: string;
  /** Who it was issued to (API key or user id): named in the agent's reports. */
  readonly actor: string;
  /** When the token stops admitting connections (seconds since the epoch). */
  readonly expiresAt: number;
  /** When it was signed (seconds since the epoch, with a fraction); now when unset. */
  readonly issuedAt?: number;
}

export async function signAdbTunnelToken(
  key: StreamSigningKey,
  claims: AdbTunnelTokenClaims,
): Promise<string> {
  return sign(key, ADB_TUNNEL_TOKEN_AUDIENCE, claims.tunnelId, claims, {
    dev: claims.deviceId,
    host: claims.hostId,
    ten: claims.tenantId,
    act: claims.actor,
  });
}

/** Checks an ADB tunnel token as verifyStreamToken checks a stream token (a stream token fails). */
export async function verifyAdbTunnelToken(
  token: string,
  keys: readonly StreamVerifyKey[],
  options: { now?: number } = {},
): Promise<AdbTunnelTokenClaims> {
  const { payload, text } = await verified(
    token,
    keys,
    ADB_TUNNEL_TOKEN_AUDIENCE,
    'ADB tunnel token',
    options.now,
  );
  return {
    tunnelId: text('jti'),
    deviceId: text('dev'),
    hostId: text('host'),
    tenantId: text('ten'),
    actor: text('act'),
    expiresAt: Number(payload.exp),
    issuedAt: Number(payload.iat ?? 0),
  };
}
