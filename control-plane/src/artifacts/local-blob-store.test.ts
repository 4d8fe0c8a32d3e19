import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { blobStoreContract } from './blob-store-contract.js';
import { createLocalBlobStore } from './local-blob-store.js';

const roots: string[] = [];
after(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function freshRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'cphone-blobs-'));
  roots.push(root);
  return root;
}

blobStoreContract('local disk', async () => createLocalBlobStore(await freshRoot()));

test('local disk: blobs live at sha256/ab/<hash> and a failed write leaves no temp file', async () => {
  const root = await freshRoot();
  const store = createLocalBlobStore(root);
  const id = 'b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9'; // sha256("hello world")
  await store.put(id, Readable.from([Buffer.from('hello world')]));
  assert.deepEqual(await readdir(join(root, 'sha256', 'b9')), [id]);
  await assert.rejects(store.put(id.replace('b9', 'c0'), Readable.from([Buffer.from('hello world')])));
  assert.deepEqual(await readdir(join(root, 'tmp')), []);
});
