// Content-addressed blob storage for artifacts: blobs are named by their sha256 and never change.
// The local-disk implementation is the default; an S3-compatible one can implement the same
// interface (and must pass the same contract suite, blob-store-contract.ts).
import type { Readable } from 'node:stream';

export const SHA256_HEX = /^[0-9a-f]{64}$/;

export interface BlobRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

export interface BlobStore {
  /**
   * Stores the bytes under `sha256`, verifying the hash while writing; a mismatch stores nothing
   * and throws InvalidArgumentError('sha256'). Storing a blob that exists already is a no-op.
   */
  put(sha256: string, source: AsyncIterable<Uint8Array> | Readable): Promise<{ size: number }>;
  /** The blob's bytes (or a range of them); undefined when absent. */
  get(sha256: string, range?: BlobRange): Promise<Readable | undefined>;
  /** The blob's size, or undefined when absent. */
  size(sha256: string): Promise<number | undefined>;
  has(sha256: string): Promise<boolean>;
  /** Removes the blob; false when it was absent. */
  delete(sha256: string): Promise<boolean>;
}
