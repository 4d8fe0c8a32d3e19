// ArtifactService: resumable uploads of APKs and files into the content-addressed blob store.
// CreateUpload -> UploadChunk (in order, from the committed offset) -> FinalizeUpload. The bytes are
// verified (size, sha256, APK manifest) before they reach the blob store, and a failed finalize
// leaves neither an artifact row nor a blob nor the staged file.
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import {
  ArtifactKind,
  type ArtifactService,
  type CreateUploadRequest,
  type DownloadArtifactRequest,
  type FinalizeUploadRequest,
  type GetArtifactRequest,
  type GetUploadRequest,
  type ListArtifactsRequest,
  type UploadChunkRequest,
} from '@cphone/proto';
import { type Kysely, type Selectable, sql } from 'kysely';
import { principalOf } from '../api/context.js';
import { idempotent } from '../api/idempotency.js';
import { pageOf, readPage } from '../api/pagination.js';
import { resolveTenant } from '../auth/scope.js';
import type { Clock } from '../clock.js';
import type { ControlPlaneConfig } from '../config.js';
import { AbortedError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { newId } from '../ids.js';
import type { Logger } from '../logger.js';
import type { Database, UploadTable } from '../store/schema.js';
import { readApkFacts } from './apk.js';
import { artifactToProto, kindFromProto, MAX_CHUNK_BYTES, uploadToProto } from './artifact-view.js';
import { type BlobStore, SHA256_HEX } from './blob-store.js';
import { createKeyedLock } from './keyed-lock.js';
import { createLocalBlobStore } from './local-blob-store.js';
import { createStaging } from './staging.js';

/** An unfinished upload is discarded after this long. */
export const UPLOAD_TTL_MS = 24 * 60 * 60 * 1000;

export interface ArtifactServiceDeps {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly config: Pick<ControlPlaneConfig, 'dataDir' | 'maxArtifactBytes'>;
  /** Defaults to the local-disk store in `<dataDir>/blobs`. */
  readonly blobs?: BlobStore;
}

/** The control plane's blob store: local disk under the data dir. */
export function blobStoreFor(config: Pick<ControlPlaneConfig, 'dataDir'>): BlobStore {
  return createLocalBlobStore(join(config.dataDir, 'blobs'));
}

function validSha(sha256: string, field = 'sha256'): string {
  if (!SHA256_HEX.test(sha256))
    throw new InvalidArgumentError(field, sha256, 'must be 64 lowercase hex characters');
  return sha256;
}

function validFilename(filename: string): string {
  if (!filename || filename.length > 255 || /[/\\\0]/.test(filename)) {
    throw new InvalidArgumentError('filename', filename, 'must be 1-255 characters without "/", "\\" or NUL');
  }
  return filename;
}

/** What the handlers share: the deps with the blob store, staging area, lock and logger made once. */
export interface ArtifactHandlerDeps {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly config: ArtifactServiceDeps['config'];
  readonly blobs: BlobStore;
  readonly staging: ReturnType<typeof createStaging>;
  /** Serialises one upload's chunks and its finalize inside this process. */
  readonly withLock: ReturnType<typeof createKeyedLock>;
  readonly log: Logger;
}

export function artifactHandlerDeps(deps: ArtifactServiceDeps): ArtifactHandlerDeps {
  return {
    db: deps.db,
    clock: deps.clock,
    config: deps.config,
    blobs: deps.blobs ?? blobStoreFor(deps.config),
    staging: createStaging(deps.config.dataDir),
    withLock: createKeyedLock(),
    log: deps.logger.child({ module: 'artifacts' }),
  };
}

async function loadUpload(deps: ArtifactHandlerDeps, tenants: readonly string[], uploadId: string) {
  const row = uploadId
    ? await deps.db
        .selectFrom('upload')
        .selectAll()
        .where('id', '=', uploadId)
        .where('tenant_id', 'in', tenants)
        .executeTakeFirst()
    : undefined;
  if (!row) throw new NotFoundError('upload', uploadId);
  return row;
}

async function loadArtifact(deps: ArtifactHandlerDeps, tenantId: string, sha256: string) {
  return deps.db
    .selectFrom('artifact')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('sha256', '=', sha256)
    .executeTakeFirst();
}

/** Marks the upload failed and discards its bytes; then rethrows why. */
async function fail(
  deps: ArtifactHandlerDeps,
  upload: Selectable<UploadTable>,
  why: unknown,
): Promise<never> {
  await deps.db.updateTable('upload').set({ state: 'failed' }).where('id', '=', upload.id).execute();
  await deps.staging.remove(upload.id);
  deps.log.info(
    { uploadId: upload.id, reason: why instanceof Error ? why.message : String(why) },
    'upload failed',
  );
  throw why;
}

async function requireOpen(deps: ArtifactHandlerDeps, upload: Selectable<UploadTable>): Promise<void> {
  if (upload.state !== 'open') {
    throw new FailedPreconditionError(`upload ${JSON.stringify(upload.id)} is ${upload.state}, not open`);
  }
  if (upload.expire_time.getTime() <= deps.clock.now().getTime()) {
    await fail(
      deps,
      upload,
      new FailedPreconditionError(`upload ${JSON.stringify(upload.id)} expired; start a new one`),
    );
  }
}

export async function createUpload(
  deps: ArtifactHandlerDeps,
  req: CreateUploadRequest,
  context: HandlerContext,
) {
  const { db, clock, config, staging } = deps;
  const principal = principalOf(context);
  const tenantId = resolveTenant(principal, req.tenantId);
  const kind = kindFromProto(req.kind);
  if (!kind)
    throw new InvalidArgumentError('kind', ArtifactKind[req.kind] ?? req.kind, 'must be APK or FILE');
  const filename = validFilename(req.filename);
  const size = Number(req.sizeBytes);
  if (!Number.isSafeInteger(size) || size <= 0 || size > config.maxArtifactBytes) {
    throw new InvalidArgumentError(
      'size_bytes',
      String(req.sizeBytes),
      `must be 1..${config.maxArtifactBytes} bytes`,
    );
  }
  const sha256 = validSha(req.sha256);
  const existing = await loadArtifact(deps, tenantId, sha256);
  if (existing) return { existingArtifact: artifactToProto(existing) };
  const { uploadId } = await idempotent(
    db,
    {
      tenantId,
      method: 'ArtifactService/CreateUpload',
      key: req.requestId,
      request: { kind, filename, size, sha256 },
    },
    async (trx) => {
      const id = newId('upl');
      const now = clock.now();
      await staging.create(id);
      await trx
        .insertInto('upload')
        .values({
          id,
          tenant_id: tenantId,
          kind,
          filename,
          expected_size: size,
          expected_sha256: sha256,
          committed_bytes: 0,
          state: 'open',
          create_time: now,
          expire_time: new Date(now.getTime() + UPLOAD_TTL_MS),
        })
        .execute();
      return { uploadId: id };
    },
    { save: (r) => r, load: (saved) => saved as { uploadId: string } },
  );
  return { upload: uploadToProto(await loadUpload(deps, [tenantId], uploadId)) };
}

export async function uploadChunk(
  deps: ArtifactHandlerDeps,
  req: UploadChunkRequest,
  context: HandlerContext,
) {
  const principal = principalOf(context);
  const upload = await loadUpload(deps, principal.visibleTenants, req.uploadId);
  return deps.withLock(upload.id, async () => {
    const current = await loadUpload(deps, principal.visibleTenants, upload.id);
    await requireOpen(deps, current);
    const offset = Number(req.offset);
    const length = req.data.length;
    const committed = current.committed_bytes;
    if (length === 0) throw new InvalidArgumentError('data', 0, 'must not be empty');
    if (length > MAX_CHUNK_BYTES) {
      throw new InvalidArgumentError('data', `${length} bytes`, `must be at most ${MAX_CHUNK_BYTES} bytes`);
    }
    // A retry of a chunk that already landed is acknowledged, so a lost response is harmless.
    if (offset >= 0 && offset + length <= committed && offset < committed) {
      return { committedOffset: BigInt(committed) };
    }
    if (offset !== committed) {
      throw new FailedPreconditionError(
        `offset ${req.offset} does not continue upload ${JSON.stringify(upload.id)}: the expected offset is ${committed}`,
      );
    }
    if (offset + length > current.expected_size) {
      throw new InvalidArgumentError(
        'data',
        `${length} bytes at offset ${offset}`,
        `runs past the declared size_bytes ${current.expected_size}`,
      );
    }
    await deps.staging.write(upload.id, offset, req.data);
    const updated = await deps.db
      .updateTable('upload')
      .set({ committed_bytes: offset + length })
      .where('id', '=', upload.id)
      .where('committed_bytes', '=', committed)
      .where('state', '=', 'open')
      .executeTakeFirst();
    if (updated.numUpdatedRows !== 1n) {
      throw new AbortedError(`upload ${JSON.stringify(upload.id)} changed concurrently; read it and resume`);
    }
    return { committedOffset: BigInt(offset + length) };
  });
}

export async function getUpload(deps: ArtifactHandlerDeps, req: GetUploadRequest, context: HandlerContext) {
  return { upload: uploadToProto(await loadUpload(deps, principalOf(context).visibleTenants, req.uploadId)) };
}

export async function finalizeUpload(
  deps: ArtifactHandlerDeps,
  req: FinalizeUploadRequest,
  context: HandlerContext,
) {
  const { db, clock, blobs, staging } = deps;
  const principal = principalOf(context);
  const first = await loadUpload(deps, principal.visibleTenants, req.uploadId);
  return deps.withLock(first.id, async () => {
    const upload = await loadUpload(deps, principal.visibleTenants, first.id);
    if (upload.state === 'finalized') {
      // A retried finalize: the artifact exists.
      const artifact = await loadArtifact(deps, upload.tenant_id, upload.expected_sha256);
      if (artifact) return { artifact: artifactToProto(artifact) };
    }
    await requireOpen(deps, upload);
    if (upload.committed_bytes !== upload.expected_size) {
      throw new FailedPreconditionError(
        `upload ${JSON.stringify(upload.id)} has ${upload.committed_bytes} of ${upload.expected_size} bytes; send the rest from offset ${upload.committed_bytes}`,
      );
    }
    const file = staging.pathOf(upload.id);
    const apk =
      upload.kind === 'apk'
        ? await readApkFacts(file, upload.id).catch((e) => fail(deps, upload, e))
        : undefined;
    // The blob store verifies the sha256 while it copies, and stores nothing on a mismatch.
    await blobs.put(upload.expected_sha256, createReadStream(file)).catch((e) => fail(deps, upload, e));
    try {
      await db.transaction().execute(async (trx) => {
        await trx
          .insertInto('artifact')
          .values({
            tenant_id: upload.tenant_id,
            sha256: upload.expected_sha256,
            kind: upload.kind,
            size_bytes: upload.expected_size,
            filename: upload.filename,
            package_name: apk?.packageName ?? '',
            version_code: apk?.versionCode ?? 0,
            version_name: apk?.versionName ?? '',
            min_sdk: apk?.minSdk ?? 0,
            target_sdk: apk?.targetSdk ?? 0,
            create_time: clock.now(),
          })
          .onConflict((oc) => oc.columns(['tenant_id', 'sha256']).doNothing())
          .execute();
        await trx.updateTable('upload').set({ state: 'finalized' }).where('id', '=', upload.id).execute();
      });
    } catch (error) {
      // Keep the blob only if some artifact row (another tenant's) still names it.
      const referenced = await db
        .selectFrom('artifact')
        .select('sha256')
        .where('sha256', '=', upload.expected_sha256)
        .executeTakeFirst()
        .catch(() => ({ sha256: upload.expected_sha256 }));
      if (!referenced) await blobs.delete(upload.expected_sha256);
      throw error;
    }
    await staging.remove(upload.id);
    const artifact = await loadArtifact(deps, upload.tenant_id, upload.expected_sha256);
    if (!artifact) throw new NotFoundError('artifact', upload.expected_sha256);
    deps.log.info({ uploadId: upload.id, sha256: artifact.sha256, kind: artifact.kind }, 'artifact stored');
    return { artifact: artifactToProto(artifact) };
  });
}

export async function getArtifact(
  deps: ArtifactHandlerDeps,
  req: GetArtifactRequest,
  context: HandlerContext,
) {
  const tenantId = resolveTenant(principalOf(context), req.tenantId);
  const sha256 = validSha(req.sha256);
  const row = await loadArtifact(deps, tenantId, sha256);
  if (!row) throw new NotFoundError('artifact', sha256);
  return { artifact: artifactToProto(row) };
}

/** The largest chunk DownloadArtifact sends. */
export const DOWNLOAD_CHUNK_BYTES = 256 * 1024;

export async function* downloadArtifact(
  deps: ArtifactHandlerDeps,
  req: DownloadArtifactRequest,
  context: HandlerContext,
) {
  const tenantId = resolveTenant(principalOf(context), req.tenantId);
  const sha256 = validSha(req.sha256);
  const row = await loadArtifact(deps, tenantId, sha256);
  if (!row) throw new NotFoundError('artifact', sha256);
  const size = Number(row.size_bytes);
  const offset = Number(req.offset);
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > size) {
    throw new InvalidArgumentError('offset', req.offset, `must be in 0..${size}`);
  }
  if (offset === size) return;
  const stream = await deps.blobs.get(sha256, { start: offset, end: size - 1 });
  if (!stream) throw new NotFoundError('artifact', sha256);
  let at = offset;
  try {
    for await (const piece of stream as AsyncIterable<Buffer>) {
      for (let i = 0; i < piece.length; i += DOWNLOAD_CHUNK_BYTES) {
        const data = piece.subarray(i, i + DOWNLOAD_CHUNK_BYTES);
        yield { offset: BigInt(at), data };
        at += data.length;
      }
    }
  } finally {
    stream.destroy();
  }
}

export async function listArtifacts(
  deps: ArtifactHandlerDeps,
  req: ListArtifactsRequest,
  context: HandlerContext,
) {
  const tenantId = resolveTenant(principalOf(context), req.tenantId);
  const kind = req.kind === ArtifactKind.UNSPECIFIED ? undefined : kindFromProto(req.kind);
  if (req.kind !== ArtifactKind.UNSPECIFIED && !kind) {
    throw new InvalidArgumentError('kind', req.kind, 'must be APK or FILE');
  }
  const page = readPage(req.pageSize, req.pageToken, { tenantId, kind, pkg: req.packageName });
  // Newest first: the cursor is (create_time, sha256) of the last row seen.
  let query = deps.db
    .selectFrom('artifact')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('create_time', 'desc')
    .orderBy('sha256', 'desc')
    .limit(page.limit);
  if (kind) query = query.where('kind', '=', kind);
  if (req.packageName) query = query.where('package_name', '=', req.packageName);
  if (page.after) {
    const [time, sha] = page.after.split('|');
    query = query.where(sql<boolean>`(create_time, sha256) < (${time}::timestamptz, ${sha ?? ''})`);
  }
  const { items, nextPageToken } = pageOf(
    await query.execute(),
    page,
    (r) => `${r.create_time.toISOString()}|${r.sha256}`,
  );
  return { artifacts: items.map(artifactToProto), nextPageToken };
}

export function artifactService(deps: ArtifactServiceDeps): Partial<ServiceImpl<typeof ArtifactService>> {
  const shared = artifactHandlerDeps(deps);
  return {
    createUpload: (req, context) => createUpload(shared, req, context),
    uploadChunk: (req, context) => uploadChunk(shared, req, context),
    getUpload: (req, context) => getUpload(shared, req, context),
    finalizeUpload: (req, context) => finalizeUpload(shared, req, context),
    getArtifact: (req, context) => getArtifact(shared, req, context),
    listArtifacts: (req, context) => listArtifacts(shared, req, context),
    downloadArtifact: (req, context) => downloadArtifact(shared, req, context),
  };
}
