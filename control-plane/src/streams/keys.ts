// The keys the control plane signs stream tokens with. Each is an Ed25519 private key in a PEM file
// `<key id>.pem` of one folder: a secret mounted on every replica, or the data dir in the embedded
// default, where the first start makes one. Every key in the folder verifies; the newest key older
// than the overlap signs (the oldest, when none is that old yet), so a rotation is: add a newer file
// to the folder; within the reload period every replica sees it and tells its agents, which then
// accept tokens signed with it before any replica signs with it; remove the old file once the tokens
// it signed have expired (at most a day: the longest token lifetime).
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type StreamSigningKey, type StreamVerifyKey, signingKey } from '@cphone/proto';
import type { Logger } from '../logger.js';

export interface StreamKeyRing {
  /** The key new tokens are signed with. */
  readonly signer: StreamSigningKey;
  /** Every key a token still in force may be signed with (what agents verify with). */
  readonly verifyKeys: readonly StreamVerifyKey[];
}

const KEY_ID = /^sk-(\d{8}T\d{6})$/;

/** A new key id, naming its creation time (UTC), so ids sort by age. */
export function newStreamKeyId(now: Date): string {
  return `sk-${now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')}`;
}

function keyTime(keyId: string): number {
  const m = KEY_ID.exec(keyId)?.[1] ?? '';
  return Date.UTC(
    +m.slice(0, 4),
    +m.slice(4, 6) - 1,
    +m.slice(6, 8),
    +m.slice(9, 11),
    +m.slice(11, 13),
    +m.slice(13, 15),
  );
}

/** Writes a new key file (what an operator's rotation does, and the embedded default's first start). */
export async function createStreamKey(dir: string, now: Date): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const keyId = newStreamKeyId(now);
  const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  await writeFile(join(dir, `${keyId}.pem`), pem, { mode: 0o600, flag: 'wx' });
  return keyId;
}

/** Reads the folder's keys and picks the signer. */
export async function loadStreamKeys(
  dir: string,
  options: { create: boolean; logger: Logger; now: Date; overlapMs: number },
): Promise<StreamKeyRing> {
  await mkdir(dir, { recursive: true, mode: 0o700 }).catch(() => undefined);
  let names = (await readdir(dir)).filter((n) => n.endsWith('.pem')).sort();
  if (names.length === 0) {
    if (!options.create) throw new Error(`no stream signing keys (<key id>.pem) in ${dir}`);
    const keyId = await createStreamKey(dir, options.now);
    options.logger.info({ keyId, dir }, 'created a stream signing key');
    names = [`${keyId}.pem`];
  }
  const keys: StreamSigningKey[] = [];
  for (const name of names) {
    const keyId = name.slice(0, -'.pem'.length);
    if (!KEY_ID.test(keyId))
      throw new Error(`stream key file ${name}: the key id must look like sk-YYYYMMDDTHHMMSS`);
    keys.push(signingKey(keyId, await readFile(join(dir, name), 'utf8')));
  }
  const settled = keys.filter((k) => keyTime(k.keyId) <= options.now.getTime() - options.overlapMs);
  const signer = (settled.at(-1) ?? keys[0]) as StreamSigningKey;
  return { signer, verifyKeys: keys.map((k) => ({ keyId: k.keyId, publicKey: k.publicKey })) };
}

/** The folder's keys as they now are, read again every `reloadMs`; listeners hear of a change. */
export class StreamKeys {
  #ring: StreamKeyRing;
  #timer: NodeJS.Timeout | undefined;
  #listeners: ((ring: StreamKeyRing) => void)[] = [];

  private constructor(
    ring: StreamKeyRing,
    private readonly load: () => Promise<StreamKeyRing>,
    private readonly logger: Logger,
  ) {
    this.#ring = ring;
  }

  static async open(
    dir: string,
    options: { create: boolean; logger: Logger; clock: { now(): Date }; overlapMs: number; reloadMs: number },
  ): Promise<StreamKeys> {
    const load = () =>
      loadStreamKeys(dir, {
        create: options.create,
        logger: options.logger,
        now: options.clock.now(),
        overlapMs: options.overlapMs,
      });
    const keys = new StreamKeys(await load(), load, options.logger);
    keys.#timer = setInterval(() => void keys.reload(), options.reloadMs);
    keys.#timer.unref();
    return keys;
  }

  get current(): StreamKeyRing {
    return this.#ring;
  }

  onChange(listener: (ring: StreamKeyRing) => void): void {
    this.#listeners.push(listener);
  }

  /** Reads the folder again; tells the listeners when the keys or the signer changed. */
  async reload(): Promise<void> {
    let next: StreamKeyRing;
    try {
      next = await this.load();
    } catch (err) {
      this.logger.error({ err }, 'reloading the stream signing keys failed; keeping the ones loaded');
      return;
    }
    const ids = (r: StreamKeyRing) => `${r.signer.keyId}|${r.verifyKeys.map((k) => k.keyId).join(',')}`;
    if (ids(next) === ids(this.#ring)) return;
    this.#ring = next;
    this.logger.info(
      { signer: next.signer.keyId, keys: next.verifyKeys.map((k) => k.keyId) },
      'stream signing keys changed',
    );
    for (const listener of this.#listeners) listener(next);
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
