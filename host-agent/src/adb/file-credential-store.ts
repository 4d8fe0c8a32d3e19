import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type AdbCredentialStore, type AdbPrivateKey, adbGeneratePublicKey } from '@yume-chan/adb';

export interface FileCredentialStoreOptions {
  /** The agent's data directory; the key lives in `<dataDir>/adbkey` (and `adbkey.pub`). */
  dataDir: string;
  /** The comment in adbkey.pub, shown by Android's "Allow USB debugging?" prompt. */
  name?: string;
}

/**
 * The agent's ADB identity, persisted like adb's own ~/.android/adbkey (PKCS#8 PEM, mode 0600) so
 * phones that trust it keep trusting it across agent restarts. `adbkey.pub` is written beside it in
 * the adb_keys format, ready to preload into a Redroid image's /data/misc/adb/adb_keys.
 */
export class FileCredentialStore implements AdbCredentialStore {
  readonly #key: AdbPrivateKey;
  readonly publicKey: string;
  readonly path: string;

  private constructor(path: string, key: AdbPrivateKey) {
    this.path = path;
    this.#key = key;
    this.publicKey = adbPublicKeyLine(key);
  }

  /** Loads `<dataDir>/adbkey`, creating it (and the directory) on first use. */
  static async open({
    dataDir,
    name = 'cphone-agent',
  }: FileCredentialStoreOptions): Promise<FileCredentialStore> {
    const path = join(dataDir, 'adbkey');
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    let pem: string;
    try {
      pem = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      pem = generatePem();
      try {
        // `wx`: two agents starting at once must not each write a different key.
        await writeFile(path, pem, { mode: 0o600, flag: 'wx' });
      } catch (writeError) {
        if ((writeError as NodeJS.ErrnoException).code !== 'EEXIST') throw writeError;
        pem = await readFile(path, 'utf8');
      }
    }
    // A key copied in by hand may carry a looser mode; adb refuses those, so do we quietly fix it.
    await chmod(path, 0o600);
    const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
    const store = new FileCredentialStore(path, { buffer: new Uint8Array(der), name });
    await writeFile(join(dataDir, 'adbkey.pub'), `${store.publicKey}\n`, { mode: 0o644 });
    return store;
  }

  /** Never replaces the persisted key: @yume-chan/adb only calls this when no key is offered. */
  generateKey(): AdbPrivateKey {
    return this.#key;
  }

  *iterateKeys(): Generator<AdbPrivateKey> {
    yield this.#key;
  }
}

function generatePem(): string {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicExponent: 0x10001,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return privateKey;
}

/** `<base64 adb public key> <name>`: one line of adb_keys, as `adb keygen` writes adbkey.pub. */
export function adbPublicKeyLine(key: AdbPrivateKey): string {
  return `${Buffer.from(adbGeneratePublicKey(key.buffer)).toString('base64')} ${key.name ?? 'cphone-agent'}`;
}
