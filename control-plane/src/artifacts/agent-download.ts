// GET /agent/v1/artifacts/:sha256 — how agents fetch APKs and files (they never ride the agent
// stream). Any live host credential may read any stored blob: blobs are content-addressed (knowing
// the hash is knowing what you ask for) and hosts are trusted infrastructure that run every
// tenant's phones anyway. Supports single `Range: bytes=a-b` requests so an agent can resume.
import { Readable } from 'node:stream';
import type { Hono } from 'hono';
import type { Kysely } from 'kysely';
import { authenticateHostCredential } from '../hosts/credentials.js';
import type { Database } from '../store/schema.js';
import { type BlobRange, type BlobStore, SHA256_HEX } from './blob-store.js';

export const AGENT_ARTIFACT_PATH = '/agent/v1/artifacts/:sha256';

/** The one range of a `Range` header, 'unsatisfiable', or undefined for the whole blob. */
export function parseRange(
  header: string | undefined,
  size: number,
): BlobRange | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (match[1] === '') {
    // A suffix: the last N bytes.
    const suffix = Number(match[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}

export function mountAgentArtifacts(app: Hono, deps: { db: Kysely<Database>; blobs: BlobStore }): void {
  app.get(AGENT_ARTIFACT_PATH, async (c) => {
    const bearer = (c.req.header('authorization') ?? '').replace(/^Bearer\s+/i, '');
    const host = await authenticateHostCredential(deps.db, bearer || undefined);
    if (!host) {
      return c.json({ error: 'missing, unknown or revoked host credential' }, 401, {
        'www-authenticate': 'Bearer',
      });
    }
    const sha256 = c.req.param('sha256');
    if (!SHA256_HEX.test(sha256)) return c.json({ error: 'no such artifact' }, 404);
    const size = await deps.blobs.size(sha256);
    if (size === undefined) return c.json({ error: 'no such artifact' }, 404);
    const range = parseRange(c.req.header('range'), size);
    if (range === 'unsatisfiable') {
      return c.body(null, 416, { 'content-range': `bytes */${size}` });
    }
    const stream = await deps.blobs.get(sha256, range);
    if (!stream) return c.json({ error: 'no such artifact' }, 404);
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'content-length': String(range ? range.end - range.start + 1 : size),
      'x-content-sha256': sha256,
      'accept-ranges': 'bytes',
      // Content-addressed: the bytes behind a hash never change.
      'cache-control': 'private, max-age=31536000, immutable',
      etag: `"${sha256}"`,
    };
    if (range) headers['content-range'] = `bytes ${range.start}-${range.end}/${size}`;
    return new Response(Readable.toWeb(stream) as ReadableStream, { status: range ? 206 : 200, headers });
  });
}
