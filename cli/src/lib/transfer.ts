// Files to and from the artifact store (ArtifactService), as `devices install|push|pull` and
// `artifacts upload|download` move them.
//
// Up: hash the file, open an upload keyed by what is sent (kind, name, size, sha256), so a rerun of
// the same command after a kill or a dropped link gets the same upload back and sends only what the
// server has not committed; then chunks from the committed offset, then finalize. The web console
// resumes the same way (web/src/console/upload.ts). An artifact the tenant already has is not sent.
// Down: DownloadArtifact from the local file's size, appended, then the whole file checked against
// the artifact's sha256.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { Code, ConnectError } from '@connectrpc/connect';
import { type Artifact, ArtifactKind, type Upload, UploadState } from '@cphone/proto/api';
import type { Api } from './api.js';
import { type Ctx, sleep } from './command.js';
import { CliError, EXIT, UsageError } from './errors.js';
import { bytesText, createProgress } from './progress.js';

export interface UploadOptions {
  kind: ArtifactKind;
  /** Largest chunk to send; the server's max_chunk_bytes caps it. */
  chunkBytes?: number;
  /** Bytes per second to stay under (a shared uplink); unset means as fast as the link goes. */
  limitRate?: number;
}

/** Flags `artifacts upload`, `devices install` and `devices push` share. */
export const UPLOAD_OPTIONS: readonly [string, string, (v: string) => number][] = [
  [
    '--chunk-size <size>',
    'largest chunk per request, e.g. 256Ki (default: the server maximum, 4 MiB)',
    byteSize,
  ],
  ['--limit-rate <size>', 'send at most this many bytes per second, e.g. 512Ki', byteSize],
];

export interface UploadFlags {
  chunkSize?: number;
  limitRate?: number;
}

export function uploadOptions(kind: ArtifactKind, flags: UploadFlags): UploadOptions {
  return {
    kind,
    ...(flags.chunkSize ? { chunkBytes: flags.chunkSize } : {}),
    ...(flags.limitRate ? { limitRate: flags.limitRate } : {}),
  };
}

/** "4Mi", "512Ki", "1M", "100" (bytes). */
export function byteSize(value: string): number {
  const m = /^(\d+)\s*(K|M|G)?(i)?B?$/i.exec(value.trim());
  if (!m) throw new UsageError(`"${value}" is not a size such as 4096, 256Ki or 4Mi`);
  const exp = { K: 1, M: 2, G: 3 }[(m[2] ?? '').toUpperCase() as 'K'] ?? 0;
  const n = Number(m[1]) * (m[3] ? 1024 : 1000) ** exp;
  if (n < 1) throw new UsageError(`"${value}" must be at least 1 byte`);
  return n;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function fileSize(path: string, what: string): Promise<number> {
  const s = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(`${what} ${path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  });
  if (!s.isFile()) throw new UsageError(`${what} ${path}: not a regular file`);
  if (s.size === 0) throw new UsageError(`${what} ${path}: the file is empty`);
  return s.size;
}

const KIND_NAME: Record<number, string> = { [ArtifactKind.APK]: 'apk', [ArtifactKind.FILE]: 'file' };

/**
 * The upload's idempotency key: the same file, name and kind always open the same upload (so a
 * rerun resumes it); `attempt` > 0 starts afresh after the server discarded a failed or expired one.
 */
export function uploadKey(
  kind: ArtifactKind,
  filename: string,
  size: number,
  sha256: string,
  attempt = 0,
): string {
  const what = createHash('sha256')
    .update(JSON.stringify([kind, filename, size]))
    .digest('hex')
    .slice(0, 12);
  return `cphone-cli-${KIND_NAME[kind] ?? kind}-${sha256}-${what}${attempt ? `-${attempt}` : ''}`;
}

/** Uploads a local file as an artifact of the context's tenant (or returns the one it has). */
export async function uploadFile(ctx: Ctx, path: string, options: UploadOptions): Promise<Artifact> {
  const api = await ctx.api();
  const size = await fileSize(path, 'upload');
  const filename = basename(path);
  const sha256 = await sha256File(path);
  const tenantId = await ctx.tenant();
  for (let attempt = 0; attempt < 3; attempt++) {
    const opened = await api.artifacts.createUpload({
      requestId: uploadKey(options.kind, filename, size, sha256, attempt),
      tenantId,
      kind: options.kind,
      filename,
      sizeBytes: BigInt(size),
      sha256,
    });
    if (opened.existingArtifact) {
      ctx.out.note(`${filename}: already uploaded (sha256 ${sha256})`);
      return opened.existingArtifact;
    }
    const upload = opened.upload;
    if (!upload) throw new CliError('CreateUpload answered with neither an upload nor an artifact');
    // A key whose upload expired or failed verification stays bound to it: start another.
    if (upload.state === UploadState.FAILED) continue;
    if (upload.state === UploadState.FINALIZED) {
      // Finalized, yet no artifact: it was removed since. Upload it again under a new key.
      continue;
    }
    return await sendChunks(ctx, api, path, upload, options);
  }
  throw new CliError(
    `${filename}: the server discarded three uploads of this file in a row; try again later`,
  );
}

async function sendChunks(
  ctx: Ctx,
  api: Api,
  path: string,
  upload: Upload,
  options: UploadOptions,
): Promise<Artifact> {
  const size = Number(upload.sizeBytes);
  const max = upload.maxChunkBytes || 4 * 1024 * 1024;
  // Under a rate limit, chunks of a quarter second's worth keep the pace even (one 4 MiB chunk
  // would burst, then stall).
  const paced = options.limitRate ? Math.max(1, Math.floor(options.limitRate / 4)) : max;
  const chunk = Math.max(1, Math.min(options.chunkBytes ?? paced, paced, max));
  let offset = Number(upload.committedOffset);
  const from = offset;
  ctx.out.note(
    offset > 0
      ? `${upload.filename}: resuming upload ${upload.uploadId} at ${offset} of ${size} bytes (${bytesText(offset)} already on the server)`
      : `${upload.filename}: upload ${upload.uploadId} of ${size} bytes (${bytesText(size)})`,
  );
  const started = Date.now();
  const speed = () => {
    const s = (Date.now() - started) / 1000;
    return s > 0 ? `${bytesText(Math.round((offset - from) / s))}/s` : '-';
  };
  const bar = createProgress({
    total: size,
    format: `uploading ${upload.filename} {bar} {percentage}% | {value}/{total} | {speed}`,
    quiet: ctx.out.quiet,
    payload: { speed: '-' },
    formatValue: (v) => bytesText(v),
  });
  bar.update(offset, { speed: speed() });
  const file = await open(path, 'r');
  try {
    let conflicts = 0;
    while (offset < size) {
      const buffer = Buffer.alloc(Math.min(chunk, size - offset));
      const { bytesRead } = await file.read(buffer, 0, buffer.length, offset);
      if (bytesRead !== buffer.length) throw new CliError(`${path} changed while it was being uploaded`);
      try {
        const res = await api.artifacts.uploadChunk({
          uploadId: upload.uploadId,
          offset: BigInt(offset),
          data: buffer,
        });
        offset = Number(res.committedOffset);
      } catch (e) {
        // Another run of the same command sends the same upload: continue from what it committed.
        const code = ConnectError.from(e).code;
        if ((code !== Code.FailedPrecondition && code !== Code.Aborted) || ++conflicts > 5) throw e;
        const now = (await api.artifacts.getUpload({ uploadId: upload.uploadId })).upload;
        if (!now || now.state !== UploadState.OPEN) throw e;
        offset = Number(now.committedOffset);
      }
      bar.update(offset, { speed: speed() });
      if (options.limitRate) {
        const due = ((offset - from) / options.limitRate) * 1000 - (Date.now() - started);
        if (due > 0) await sleep(due);
      }
    }
  } finally {
    await file.close();
  }
  const done = await api.artifacts.finalizeUpload({ uploadId: upload.uploadId });
  if (!done.artifact) throw new CliError('FinalizeUpload answered without an artifact');
  const seconds = (Date.now() - started) / 1000;
  bar.stop(
    `uploaded ${upload.filename}: ${bytesText(size - from)} in ${seconds.toFixed(1)}s (${speed()}), sha256 ${done.artifact.sha256}`,
  );
  return done.artifact;
}

/**
 * Writes an artifact to a local file. With `resume`, a shorter local file is taken as the start of
 * the artifact and only the rest is fetched; the whole file is then checked against the sha256.
 */
export async function downloadArtifact(
  ctx: Ctx,
  artifact: Artifact,
  path: string,
  options: { resume: boolean },
): Promise<{ path: string; bytes: number; resumedAt: number }> {
  const api = await ctx.api();
  const size = Number(artifact.sizeBytes);
  if (path === '-') {
    for await (const res of api.artifacts.downloadArtifact({
      tenantId: artifact.tenantId,
      sha256: artifact.sha256,
    })) {
      process.stdout.write(res.data);
    }
    return { path, bytes: size, resumedAt: 0 };
  }
  const have = options.resume ? ((await stat(path).catch(() => undefined))?.size ?? 0) : 0;
  if (have > size) {
    throw new CliError(
      `${path} has ${have} bytes, more than the artifact's ${size}: it is another file; remove it or choose another path`,
      EXIT.failedPrecondition,
    );
  }
  if (have > 0) ctx.out.note(`${path}: resuming at ${have} of ${size} bytes`);
  const bar = createProgress({
    total: size,
    format: `downloading ${basename(path)} {bar} {percentage}% | {value}/{total}`,
    quiet: ctx.out.quiet,
    formatValue: (v) => bytesText(v),
  });
  const file = await open(path, have > 0 ? 'a' : 'w');
  let at = have;
  try {
    if (have < size) {
      for await (const res of api.artifacts.downloadArtifact({
        tenantId: artifact.tenantId,
        sha256: artifact.sha256,
        offset: BigInt(have),
      })) {
        if (Number(res.offset) !== at)
          throw new CliError(`the download skipped from byte ${at} to ${res.offset}`);
        await file.write(res.data);
        at += res.data.length;
        bar.update(at);
      }
    }
  } finally {
    await file.close();
  }
  const sha = await sha256File(path);
  if (sha !== artifact.sha256) {
    throw new CliError(
      `${path} does not match artifact ${artifact.sha256} (its sha256 is ${sha})${have ? `: the ${have} bytes it had before were not the artifact's; remove it and download again` : ''}`,
    );
  }
  bar.stop(
    `saved ${path}: ${bytesText(size)}${have ? ` (${bytesText(size - have)} fetched, resumed at ${have})` : ''}`,
  );
  return { path, bytes: size, resumedAt: have };
}
