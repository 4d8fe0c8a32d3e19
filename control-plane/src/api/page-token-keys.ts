// Where the page-token keys come from: the config (CPHONE_PAGE_TOKEN_KEYS), else one key made at
// the first start and kept in the data dir beside the generated TLS material, so every replica on
// that data dir (and every restart) signs and verifies with the same key.
import { randomBytes } from 'node:crypto';
import { link, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ControlPlaneConfig } from '../config.js';
import { InvalidArgumentError } from '../errors.js';
import { MIN_PAGE_TOKEN_SECRET_BYTES, PAGE_TOKEN_KEY_ID, type PageTokenKey } from './pagination.js';

export const PAGE_TOKEN_KEY_FILE = 'page-token-key';

function parse(file: string, text: string): PageTokenKey {
  const [id = '', secret = ''] = text.trim().split(':');
  const key = { id, secret: Buffer.from(secret, 'base64') };
  if (!PAGE_TOKEN_KEY_ID.test(key.id) || key.secret.byteLength < MIN_PAGE_TOKEN_SECRET_BYTES) {
    throw new InvalidArgumentError(
      file,
      `${text.length} characters`,
      'is not a page token key (<id>:<base64>)',
    );
  }
  return key;
}

/** The configured keys, or the data dir's key (made on the first start). */
export function loadPageTokenKeys(
  config: Pick<ControlPlaneConfig, 'dataDir' | 'pageTokenKeys'>,
): Promise<readonly PageTokenKey[]> {
  return loadKeys(config.pageTokenKeys, join(config.dataDir, PAGE_TOKEN_KEY_FILE));
}

/**
 * `configured` when it holds a key, else the one key kept in `file` (made there on the first
 * start): the page-token keys, and the keys webhook secrets are encrypted with.
 */
export async function loadKeys(
  configured: readonly PageTokenKey[],
  file: string,
): Promise<readonly PageTokenKey[]> {
  if (configured.length > 0) return configured;
  const made = `k${Date.now().toString(36)}:${randomBytes(32).toString('base64')}\n`;
  // Written whole under another name, then linked into place: link fails if the file exists, so
  // replicas starting together on one data dir all read the one key that won, never half of one.
  const staged = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(staged, made, { mode: 0o600 });
  try {
    await link(staged, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    await rm(staged, { force: true });
  }
  return [parse(file, await readFile(file, 'utf8'))];
}
