import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 1000;

/**
 * Cursor pagination on ids. A page token carries the last id seen and a hash of the query it
 * belongs to, so a token replayed against another query (other filters, other tenant) is refused.
 */
export interface Page {
  /** Rows to fetch: pageSize + 1, to know whether another page follows. */
  limit: number;
  pageSize: number;
  after: string | undefined;
  queryHash: string;
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
  let decoded: { a?: unknown; h?: unknown };
  try {
    decoded = JSON.parse(Buffer.from(pageToken, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidArgumentError('page_token', pageToken, 'is not a page token');
  }
  if (typeof decoded.a !== 'string' || typeof decoded.h !== 'string') {
    throw new InvalidArgumentError('page_token', pageToken, 'is not a page token');
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
  const token =
    last === undefined
      ? ''
      : Buffer.from(JSON.stringify({ a: idOf(last), h: page.queryHash })).toString('base64url');
  return { items, nextPageToken: token };
}
