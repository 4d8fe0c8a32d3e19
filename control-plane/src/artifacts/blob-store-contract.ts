// The behaviour every BlobStore must have; each implementation's test file runs this suite.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { test } from 'node:test';
import type { BlobStore } from './blob-store.js';

const sha = (data: string) => createHash('sha256').update(data).digest('hex');

export function blobStoreContract(name: string, make: () => Promise<BlobStore>): void {
  test(`${name}: put, has, size, get (whole and ranged), delete`, async () => {
    const store = await make();
    const data = 'hello, blob store';
    const id = sha(data);
    assert.equal(await store.has(id), false);
    assert.equal(await store.get(id), undefined);
    assert.deepEqual(
      await store.put(id, Readable.from([Buffer.from('hello, '), Buffer.from('blob store')])),
      {
        size: data.length,
      },
    );
    assert.equal(await store.has(id), true);
    assert.equal(await store.size(id), data.length);
    const whole = await store.get(id);
    assert.ok(whole);
    assert.equal(await text(whole), data);
    const part = await store.get(id, { start: 7, end: 10 });
    assert.ok(part);
    assert.equal(await text(part), 'blob');
    await store.put(id, Readable.from([Buffer.from(data)]));
    assert.equal(await store.delete(id), true);
    assert.equal(await store.delete(id), false);
    assert.equal(await store.has(id), false);
  });

  test(`${name}: a hash mismatch stores nothing`, async () => {
    const store = await make();
    const claimed = sha('something else');
    await assert.rejects(store.put(claimed, Readable.from([Buffer.from('actual bytes')])), /sha256/);
    assert.equal(await store.has(claimed), false);
    assert.equal(await store.has(sha('actual bytes')), false);
  });

  test(`${name}: a malformed hash is refused`, async () => {
    const store = await make();
    await assert.rejects(store.has('../../etc/passwd'), /sha256/);
  });
}
