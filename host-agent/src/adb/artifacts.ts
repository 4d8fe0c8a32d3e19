import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { AdbError, AdbInvalidArgumentError, ArtifactTransferError } from './errors.js';

export type FetchFunction = typeof globalThis.fetch;

export interface ArtifactRef {
  url: string;
  sha256: string;
  sizeBytes: number;
}

export interface TransferOptions {
  fetch: FetchFunction;
  /** The host credential, sent as `Authorization: Bearer …`. */
  credential: string;
  signal?: AbortSignal | undefined;
}

export function checkArtifactRef({ url, sha256, sizeBytes }: ArtifactRef, prefix: string): void {
  if (!/^[0-9a-f]{64}$/.test(sha256)) {
    throw new AdbInvalidArgumentError(
      `${prefix}.artifactSha256`,
      sha256,
      'must be 64 lowercase hex characters',
    );
  }
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) {
    throw new AdbInvalidArgumentError(`${prefix}.sizeBytes`, sizeBytes, 'must be a non-negative integer');
  }
  checkHttpUrl(`${prefix}.downloadUrl`, url);
}

export function checkHttpUrl(field: string, url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new AdbInvalidArgumentError(field, url, 'must be an absolute URL');
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new AdbInvalidArgumentError(field, url, 'must be an http(s) URL');
  }
}

/** A verified local copy of an artifact; `dispose` deletes it. */
export interface LocalArtifact {
  path: string;
  dispose(): Promise<void>;
}

/**
 * Downloads an artifact into `dir`, hashing and counting while it streams, and keeps it only if
 * both match: a phone never sees bytes the control plane did not vouch for, and the agent can read
 * an APK's manifest from the copy.
 */
export async function downloadArtifact(
  ref: ArtifactRef,
  dir: string,
  options: TransferOptions,
): Promise<LocalArtifact> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `${ref.sha256}.${randomBytes(4).toString('hex')}.part`);
  const dispose = (): Promise<void> => rm(path, { force: true });
  try {
    let response: Response;
    try {
      response = await options.fetch(ref.url, {
        headers: { authorization: `Bearer ${options.credential}` },
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      throw new ArtifactTransferError(ref.url, `GET failed: ${(error as Error).message}`, { cause: error });
    }
    if (!response.ok || !response.body) {
      await response.body?.cancel().catch(() => {});
      throw new ArtifactTransferError(ref.url, `GET answered HTTP ${response.status}`);
    }
    const hash = createHash('sha256');
    let size = 0;
    const file = createWriteStream(path, { mode: 0o600 });
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        size += chunk.byteLength;
        if (size > ref.sizeBytes) {
          throw new ArtifactTransferError(ref.url, `more than the announced ${ref.sizeBytes} bytes`);
        }
        hash.update(chunk);
        if (!file.write(chunk)) await new Promise<void>((resolve) => file.once('drain', () => resolve()));
      }
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      if (error instanceof ArtifactTransferError) throw error;
      throw new ArtifactTransferError(ref.url, `download broke off: ${(error as Error).message}`, {
        cause: error,
      });
    } finally {
      file.end();
      await finished(file).catch(() => {});
    }
    if (size !== ref.sizeBytes) {
      throw new ArtifactTransferError(ref.url, `got ${size} bytes, the artifact has ${ref.sizeBytes}`);
    }
    const digest = hash.digest('hex');
    if (digest !== ref.sha256) {
      throw new ArtifactTransferError(ref.url, `sha256 is ${digest}, expected ${ref.sha256}`);
    }
    return { path, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** PUTs a stream to `url`, hashing it on the way; answers the sha256 and size sent. */
export async function uploadArtifact(
  url: string,
  body: ReadableStream<Uint8Array>,
  size: number,
  options: TransferOptions,
): Promise<{ sha256: string; sizeBytes: number }> {
  const hash = createHash('sha256');
  let sent = 0;
  const counted = body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        hash.update(chunk);
        sent += chunk.byteLength;
        controller.enqueue(chunk);
      },
    }),
  );
  let response: Response;
  try {
    response = await options.fetch(url, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${options.credential}`,
        'content-type': 'application/octet-stream',
        // The size known from stat; the body streams, so fetch cannot compute it.
        'x-content-length': String(size),
      },
      body: counted,
      // Node's fetch requires this for a streamed request body.
      duplex: 'half',
      ...(options.signal ? { signal: options.signal } : {}),
    } as RequestInit);
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    const cause = (error as Error & { cause?: unknown }).cause;
    // An error raised while reading the device (e.g. the size limit) surfaces as fetch's cause.
    if (cause instanceof AdbError) throw cause;
    throw new ArtifactTransferError(url, `PUT failed: ${(error as Error).message}`, { cause: error });
  }
  await response.body?.cancel().catch(() => {});
  if (!response.ok) throw new ArtifactTransferError(url, `PUT answered HTTP ${response.status}`);
  return { sha256: hash.digest('hex'), sizeBytes: sent };
}
