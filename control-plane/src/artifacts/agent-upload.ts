// PUT /agent/v1/artifacts?tenant_id=…&filename=… — how an agent hands back a file pulled from a
// phone (DeviceService.PullFile). The agent does not know the hash up front, so the bytes are
// hashed while they are staged, then stored by that hash. A host may only upload for a tenant that
// has a device on it: a host credential is not a key to every tenant's artifacts.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Hono } from 'hono';
import type { Kysely } from 'kysely';
import { authenticateHostCredential } from '../hosts/credentials.js';
import type { Database } from '../store/schema.js';
import type { BlobStore } from './blob-store.js';

export const AGENT_UPLOAD_PATH = '/agent/v1/artifacts';
/** Names this route's staged files in `<dataDir>/uploads`, beside the resumable uploads' files. */
export const AGENT_STAGING_PREFIX = 'agent-';

class TooLargeError extends Error {}

export interface AgentUploadDeps {
  db: Kysely<Database>;
  blobs: BlobStore;
  /** Staging folder for bytes in flight. */
  dataDir: string;
  maxBytes: number;
}

export function mountAgentUpload(app: Hono, deps: AgentUploadDeps): void {
  app.put(AGENT_UPLOAD_PATH, async (c) => {
    const bearer = (c.req.header('authorization') ?? '').replace(/^Bearer\s+/i, '');
    const host = await authenticateHostCredential(deps.db, bearer || undefined);
    if (!host) {
      return c.json({ error: 'missing, unknown or revoked host credential' }, 401, {
        'www-authenticate': 'Bearer',
      });
    }
    const tenantId = c.req.query('tenant_id') ?? '';
    const filename = (c.req.query('filename') ?? '').slice(0, 255);
    const hosted = await deps.db
      .selectFrom('device')
      .select('id')
      .where('host_id', '=', host.hostId)
      .where('tenant_id', '=', tenantId)
      .where('state', '!=', 'deleted')
      .executeTakeFirst();
    if (!hosted)
      return c.json({ error: `tenant_id ${JSON.stringify(tenantId)} has no device on this host` }, 403);
    const body = c.req.raw.body;
    if (!body) return c.json({ error: 'the request has no body' }, 400);

    const dir = join(deps.dataDir, 'uploads');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const staged = join(dir, `${AGENT_STAGING_PREFIX}${randomUUID()}`);
    const hash = createHash('sha256');
    let size = 0;
    try {
      await pipeline(
        Readable.fromWeb(body as import('node:stream/web').ReadableStream<Uint8Array>),
        new Transform({
          transform(chunk: Buffer, _enc, done) {
            size += chunk.length;
            if (size > deps.maxBytes)
              return done(new TooLargeError(`the file exceeds ${deps.maxBytes} bytes`));
            hash.update(chunk);
            done(null, chunk);
          },
        }),
        createWriteStream(staged, { mode: 0o600 }),
      );
      const sha256 = hash.digest('hex');
      await deps.blobs.put(sha256, createReadStream(staged));
      await deps.db
        .insertInto('artifact')
        .values({
          tenant_id: tenantId,
          sha256,
          kind: 'file',
          size_bytes: size,
          filename,
          package_name: '',
          version_code: 0,
          version_name: '',
          create_time: new Date(),
        })
        .onConflict((oc) => oc.columns(['tenant_id', 'sha256']).doNothing())
        .execute();
      return c.json({ sha256, sizeBytes: size }, 201);
    } catch (error) {
      if (error instanceof TooLargeError) return c.json({ error: error.message }, 413);
      throw error;
    } finally {
      await rm(staged, { force: true });
    }
  });
}
