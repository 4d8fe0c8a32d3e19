import type { Adb } from '@yume-chan/adb';
import { ReadableStream, TransformStream } from '@yume-chan/stream-extra';
import { AdbFileError, AdbInvalidArgumentError, AdbSizeLimitError } from './errors.js';

/** Bytes to send to the device: a buffer, a web stream, or any async iterable (a Node stream). */
export type ByteSource = Uint8Array | AsyncIterable<Uint8Array> | globalThis.ReadableStream<Uint8Array>;

export function checkRemotePath(field: string, path: string): void {
  if (!path.startsWith('/') || path.includes('\0') || path.includes('\n')) {
    throw new AdbInvalidArgumentError(field, path, 'must be an absolute device path');
  }
}

/** stream-extra's ReadableStream over any source, counting the bytes that pass. */
function toStream(
  source: ByteSource,
  counter: { bytes: number },
  signal?: AbortSignal,
): ReadableStream<Uint8Array> {
  if (source instanceof Uint8Array) {
    return new ReadableStream<Uint8Array>({
      start(controller) {
        counter.bytes += source.byteLength;
        controller.enqueue(source);
        controller.close();
      },
    });
  }
  const iterator = (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      signal?.throwIfAborted();
      const { done, value } = await iterator.next();
      if (done) {
        controller.close();
        return;
      }
      const bytes = value instanceof Uint8Array ? value : new Uint8Array(value as ArrayBufferLike);
      counter.bytes += bytes.byteLength;
      controller.enqueue(bytes);
    },
    async cancel(reason) {
      await iterator.return?.(reason);
    },
  });
}

/** Writes `source` to `remotePath` (sync SEND) with permission bits `mode`; returns the size. */
export async function pushFile(
  adb: Adb,
  source: ByteSource,
  remotePath: string,
  { mode = 0o644, signal }: { mode?: number; signal?: AbortSignal | undefined } = {},
): Promise<number> {
  checkRemotePath('remotePath', remotePath);
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw new AdbInvalidArgumentError('mode', mode, 'must be unix permission bits (0 to 0o7777)');
  }
  const counter = { bytes: 0 };
  const sync = await adb.sync();
  const abort = (): void => {
    void sync.dispose().catch(() => {});
  };
  signal?.addEventListener('abort', abort, { once: true });
  try {
    await sync.write({ filename: remotePath, file: toStream(source, counter, signal), permission: mode });
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw new AdbFileError(remotePath, `push failed: ${(error as Error).message}`);
  } finally {
    signal?.removeEventListener('abort', abort);
    await sync.dispose().catch(() => {});
  }
  return counter.bytes;
}

/**
 * Streams `remotePath` to `consume` (sync RECV) after checking it is a regular file of at most
 * `maxBytes`; the stream errors if the file grows past the limit while being read.
 */
export async function pullFile<T>(
  adb: Adb,
  remotePath: string,
  consume: (stream: globalThis.ReadableStream<Uint8Array>, size: number) => Promise<T>,
  { maxBytes, signal }: { maxBytes: number; signal?: AbortSignal | undefined },
): Promise<T> {
  checkRemotePath('remotePath', remotePath);
  const sync = await adb.sync();
  const abort = (): void => {
    void sync.dispose().catch(() => {});
  };
  signal?.addEventListener('abort', abort, { once: true });
  try {
    let size: number;
    try {
      const stat = await sync.stat(remotePath);
      // LinuxFileType.File (0o10); directories and devices cannot be pulled as bytes.
      if (stat.type !== 8) throw new AdbFileError(remotePath, 'not a regular file');
      size = Number(stat.size);
    } catch (error) {
      if (error instanceof AdbFileError) throw error;
      throw new AdbFileError(remotePath, (error as Error).message);
    }
    if (size > maxBytes) throw new AdbSizeLimitError(remotePath, maxBytes, size);
    let seen = 0;
    const limited = sync.read(remotePath).pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          seen += chunk.byteLength;
          if (seen > maxBytes) throw new AdbSizeLimitError(remotePath, maxBytes, undefined);
          controller.enqueue(chunk);
        },
      }),
    );
    return await consume(limited as unknown as globalThis.ReadableStream<Uint8Array>, size);
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw error;
  } finally {
    signal?.removeEventListener('abort', abort);
    await sync.dispose().catch(() => {});
  }
}

/** Reads a whole (small) stream into one buffer. */
export async function collect(stream: globalThis.ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk.slice());
  return Buffer.concat(chunks);
}
