import { generateKeyPairSync } from 'node:crypto';
import type { AdbCredentialStore, AdbPrivateKey } from '@yume-chan/adb';

/**
 * RSA keys for @yume-chan/adb's AUTH. @yume-chan/adb-credential-nodejs does not resolve here, and
 * node:crypto makes the same PKCS#8 key adb expects (2048 bits, exponent 65537).
 */
export class MemoryCredentialStore implements AdbCredentialStore {
  readonly #keys: AdbPrivateKey[] = [];
  readonly #name: string;

  /** `keys`: PKCS#8 DER private keys to present, in order (for example one loaded from disk). */
  constructor({ name = 'cphone-agent', keys = [] }: { name?: string; keys?: readonly Uint8Array[] } = {}) {
    this.#name = name;
    for (const buffer of keys) this.#keys.push({ buffer, name });
  }

  generateKey(): AdbPrivateKey {
    const { privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicExponent: 0x10001,
      privateKeyEncoding: { type: 'pkcs8', format: 'der' },
      publicKeyEncoding: { type: 'spki', format: 'der' },
    });
    const key: AdbPrivateKey = { buffer: new Uint8Array(privateKey), name: this.#name };
    this.#keys.push(key);
    return key;
  }

  *iterateKeys(): Generator<AdbPrivateKey> {
    yield* this.#keys;
  }
}
