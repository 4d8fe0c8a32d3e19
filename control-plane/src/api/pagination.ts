import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 1000;

/**
 * Cursor pagination on ids. A page token carries the last id seen and a hash of the query it
 * belongs to, so a token replayed against another query (other filters, other tenant) is refused;
 * it is signed, so a client cannot move the cursor or make a token up.
 */
export interface Page {
  /** Rows to fetch: pageSize + 1, to know whether another page follows. */
  limit: number;
  pageSize: number;
  after: string | undefined;
  queryHash: string;
}

/** An HMAC-SHA256 key for page tokens; the id rides in each token so keys can rotate. */
export interface PageTokenKey {
  readonly id: string;
  readonly secret: Buffer;
}

export const PAGE_TOKEN_KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
/** HMAC-SHA256 keys shorter than its output weaken it. */
export const MIN_PAGE_TOKEN_SECRET_BYTES = 32;
// Far above any token this module makes; a longer one is refused before any work.
const MAX_TOKEN_CHARS = 512;

let signing: PageTokenKey = { id: 'process', secret: randomBytes(32) };
let verifying = new Map<string, Buffer>([[signing.id, signing.secret]]);

/**
 * The keys page tokens are signed and verified with, set once at server start (config.ts
 * CPHONE_PAGE_TOKEN_KEYS, or the key kept in the data dir). The first signs; every one verifies, so
 * a key being retired keeps its tokens valid while it is listed second. Until this is called (tests
 * that run services without a server), a key made for this process is used.
 */
export function usePageTokenKeys(keys: readonly PageTokenKey[]): void {
  const [first] = keys;
  if (!first) throw new InvalidArgumentError('page token keys', '[]', 'need at least one key');
  for (const key of keys) {
    if (!PAGE_TOKEN_KEY_ID.test(key.id))
      throw new InvalidArgumentError('page token key id', key.id, 'must be 1-32 of A-Z a-z 0-9 _ -');
    if (key.secret.byteLength < MIN_PAGE_TOKEN_SECRET_BYTES)
      throw new InvalidArgumentError(
        `page token key ${key.id}`,
        `${key.secret.byteLength} bytes`,
        `must be at least ${MIN_PAGE_TOKEN_SECRET_BYTES} bytes`,
      );
  }
  signing = first;
  verifying = new Map(keys.map((k) => [k.id, k.secret]));
}

function mac(secret: Buffer, signed: string): Buffer {
  return createHmac('sha256', secret).update(signed).digest();
}

/** `<key id>.<payload>.<mac>`, base64url; the mac covers the key id and the payload. */
function sign(payload: object): string {
  const signed = `${signing.id}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  return `${signed}.${mac(signing.secret, signed).toString('base64url')}`;
}

/** The token's payload if one of the keys signed it, else undefined. */
function verify(token: string): unknown {
  if (token.length > MAX_TOKEN_CHARS) return undefined;
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const [keyId = '', payload = '', given = ''] = parts;
  const secret = verifying.get(keyId);
  if (!secret) return undefined;
  const expected = mac(secret, `${keyId}.${payload}`);
  const actual = Buffer.from(given, 'base64url');
  if (actual.byteLength !== expected.byteLength || !timingSafeEqual(actual, expected)) return undefined;
  try {
    return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

export function queryHash(query: unknown): string {
  return createHash('sha256').update(JSON.stringify(query)).digest('base64url').slice(0, 16);
}

export function readPage(pageSize: number, pageToken: string, query: unknown): Page {
  if (!Number.isInteger(pageSize) || pageSize < 0) {
    throw new InvalidArgumentError('page_size', pageSize, 'must be zero (default) or positive');
  }
  const size = Math.min(pageSize || DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
  const hash = queryHash(query);
  if (!pageToken) return { limit: size + 1, pageSize: size, after: undefined, queryHash: hash };
  const decoded = verify(pageToken) as { a?: unknown; h?: unknown } | undefined;
  if (typeof decoded?.a !== 'string' || typeof decoded.h !== 'string') {
    throw new InvalidArgumentError(
      'page_token',
      pageToken,
      'is not a page token this service issued (or its signing key was retired)',
    );
  }
  if (decoded.h !== hash) {
    throw new InvalidArgumentError('page_token', pageToken, 'was issued for another query');
  }
  return { limit: size + 1, pageSize: size, after: decoded.a, queryHash: hash };
}

/** Cuts the extra row off and makes the next token (empty on the last page). */
export function pageOf<T>(
  rows: T[],
  page: Page,
  idOf: (row: T) => string,
): { items: T[]; nextPageToken: string } {
  if (rows.length <= page.pageSize) return { items: rows, nextPageToken: '' };
  const items = rows.slice(0, page.pageSize);
  const last = items[items.length - 1];
  return { items, nextPageToken: last === undefined ? '' : sign({ a: idOf(last), h: page.queryHash }) };
}

/** A token that resumes right after the row `id` (for streams that hand out a cursor per chunk). */
export function tokenAfter(id: string, page: Page): string {
  return sign({ a: id, h: page.queryHash });
}
