import { createPublicKey, constants as cryptoConstants, type KeyObject, publicDecrypt } from 'node:crypto';

/**
 * ADB's public key is Android's mincrypt `RSAPublicKey` struct, base64-encoded and followed by
 * " user@host": u32 word count, u32 n0inv, u32[len] modulus, u32[len] R^2 mod n, u32 exponent,
 * all little-endian. Only the modulus and exponent matter for verifying a signature.
 */
export interface AdbPublicKey {
  readonly key: KeyObject;
  readonly comment: string;
  /** The base64 blob as the host sent it, used to match a key against the allow-list. */
  readonly encoded: string;
}

export class InvalidAdbKeyError extends Error {
  override readonly name = 'InvalidAdbKeyError';
}

export function parseAdbPublicKey(text: string): AdbPublicKey {
  const trimmed = text.replace(/\0/g, '').trim();
  const space = trimmed.indexOf(' ');
  const encoded = space === -1 ? trimmed : trimmed.slice(0, space);
  const comment = space === -1 ? '' : trimmed.slice(space + 1);
  const raw = Buffer.from(encoded, 'base64');
  if (raw.byteLength < 12) throw new InvalidAdbKeyError(`public key is ${raw.byteLength} bytes, too short`);
  const words = raw.readUInt32LE(0);
  const expected = 4 + 4 + words * 4 * 2 + 4;
  if (words === 0 || raw.byteLength !== expected) {
    throw new InvalidAdbKeyError(
      `public key of ${raw.byteLength} bytes does not match ${words} modulus words`,
    );
  }
  // mincrypt stores the modulus least-significant word first; JWK wants big-endian bytes.
  const modulus = Buffer.from(raw.subarray(8, 8 + words * 4)).reverse();
  const exponent = raw.readUInt32LE(8 + words * 8);
  const e = Buffer.alloc(4);
  e.writeUInt32BE(exponent);
  const key = createPublicKey({
    key: { kty: 'RSA', n: modulus.toString('base64url'), e: stripLeadingZeros(e).toString('base64url') },
    format: 'jwk',
  });
  return { key, comment, encoded };
}

function stripLeadingZeros(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.byteLength - 1 && bytes[i] === 0) i++;
  return bytes.subarray(i);
}

/** DER prefix of a SHA-1 DigestInfo: adb signs the 20-byte token as if it were a SHA-1 digest. */
const SHA1_DIGEST_INFO = Buffer.from('3021300906052b0e03021a05000414', 'hex');

/** True when `signature` is the host's PKCS#1 v1.5 signature of `token` under `key`. */
export function verifyTokenSignature(key: KeyObject, token: Uint8Array, signature: Uint8Array): boolean {
  let decoded: Buffer;
  try {
    decoded = publicDecrypt({ key, padding: cryptoConstants.RSA_PKCS1_PADDING }, signature);
  } catch {
    return false;
  }
  return decoded.equals(Buffer.concat([SHA1_DIGEST_INFO, token]));
}

export interface AuthOptions {
  /**
   * `accept-any`: any RSAPUBLICKEY the host offers is trusted (as if the user tapped "Allow").
   * `allow-list`: only `authorizedKeys` pass; an unknown key leaves the host "unauthorized".
   */
  mode: 'accept-any' | 'allow-list';
  /** adbkey.pub lines (base64 blob, optional comment). */
  authorizedKeys?: readonly string[];
}

/** The phone's adb_keys: shared by every connection so a key accepted once stays accepted. */
export class AuthorizedKeys {
  readonly #keys = new Map<string, AdbPublicKey>();
  readonly mode: AuthOptions['mode'];

  constructor(options: AuthOptions) {
    this.mode = options.mode;
    for (const line of options.authorizedKeys ?? []) {
      if (line.trim() !== '') this.add(parseAdbPublicKey(line));
    }
  }

  add(key: AdbPublicKey): void {
    this.#keys.set(key.encoded, key);
  }

  get size(): number {
    return this.#keys.size;
  }

  /** The key that signed `token`, if any authorized key did. */
  verify(token: Uint8Array, signature: Uint8Array): AdbPublicKey | undefined {
    for (const key of this.#keys.values()) {
      if (verifyTokenSignature(key.key, token, signature)) return key;
    }
    return undefined;
  }

  /** Decides on a key the host offers after its signatures failed. */
  offer(text: string): AdbPublicKey | undefined {
    let key: AdbPublicKey;
    try {
      key = parseAdbPublicKey(text);
    } catch {
      return undefined;
    }
    if (this.#keys.has(key.encoded)) return key;
    if (this.mode !== 'accept-any') return undefined;
    this.add(key);
    return key;
  }
}
