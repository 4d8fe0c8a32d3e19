import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { InvalidArgumentError } from '../errors.js';
import { type BlobRange, type BlobStore, SHA256_HEX } from './blob-store.js';

function checked(sha256: string): string {
  if (!SHA256_HEX.test(sha256))
    throw new InvalidArgumentError('sha256', sha256, 'must be 64 lowercase hex characters');
  return sha256;
}

/**
 * Blobs on local disk at `<root>/sha256/ab/<hash>` (the first two hex digits fan the files out).
 * Writes go to `<root>/tmp` first and are renamed into place once the hash matched, so a reader
 * never sees a partial blob and a crash leaves only a temp file behind.
 */
export function createLocalBlobStore(root: string): BlobStore {
  const pathOf = (sha256: string) => join(root, 'sha256', checked(sha256).slice(0, 2), sha256);
  const size = async (sha256: string) => {
    try {
      return (await stat(pathOf(sha256))).size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  };
  return {
    async put(sha256, source) {
      const target = pathOf(sha256);
      const tmpDir = join(root, 'tmp');
      await mkdir(tmpDir, { recursive: true });
      const temp = join(tmpDir, `${sha256}.${randomBytes(6).toString('hex')}`);
      const hash = createHash('sha256');
      let bytes = 0;
      try {
        await pipeline(
          source,
          async function* (chunks: AsyncIterable<Uint8Array>) {
            for await (const chunk of chunks) {
              hash.update(chunk);
              bytes += chunk.length;
              yield chunk;
            }
          },
          createWriteStream(temp, { flags: 'wx', flush: true }),
        );
        const actual = hash.digest('hex');
        if (actual !== sha256) {
          throw new InvalidArgumentError(
            'sha256',
            sha256,
            `does not match the content (its sha256 is ${actual})`,
          );
        }
        await mkdir(dirname(target), { recursive: true });
        await rename(temp, target);
        return { size: bytes };
      } finally {
        await rm(temp, { force: true });
      }
    },
    async get(sha256, range?: BlobRange) {
      if ((await size(sha256)) === undefined) return undefined;
      return createReadStream(pathOf(sha256), range ? { start: range.start, end: range.end } : {});
    },
    size,
    async has(sha256) {
      return (await size(sha256)) !== undefined;
    },
    async delete(sha256) {
      try {
        await unlink(pathOf(sha256));
        return true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw error;
      }
    },
  };
}
