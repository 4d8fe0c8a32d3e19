import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { enrollTestHost, insertTestDevice, type TestHost } from '../gateway/testing.js';
import type { ControlPlane } from '../server.js';
import { startTestControlPlane, type TestControlPlane } from '../test-control-plane.js';

let testPlane: TestControlPlane;
let plane: ControlPlane;
let host: TestHost;
let tenantId: string;

before(async () => {
  testPlane = await startTestControlPlane({ maxArtifactBytes: 1024 * 1024 });
  plane = testPlane.plane;
  host = await enrollTestHost(plane.deps.db);
  ({ tenantId } = await insertTestDevice(plane.deps.db, { hostId: host.hostId, state: 'running' }));
});

after(() => testPlane.close());

function put(query: Record<string, string>, body: Uint8Array, credential?: string) {
  return fetch(`${plane.httpUrl}/agent/v1/artifacts?${new URLSearchParams(query)}`, {
    method: 'PUT',
    headers: credential ? { authorization: `Bearer ${credential}` } : {},
    body,
  });
}

test('an agent uploads a pulled file: stored by its hash as a FILE artifact of the tenant', async () => {
  const bytes = randomBytes(300_000);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const response = await put({ tenant_id: tenantId, filename: 'log.txt' }, bytes, host.credential);
  assert.equal(response.status, 201);
  assert.deepEqual(await response.json(), { sha256, sizeBytes: bytes.length });
  const row = await plane.deps.db
    .selectFrom('artifact')
    .select(['kind', 'size_bytes', 'filename'])
    .where('tenant_id', '=', tenantId)
    .where('sha256', '=', sha256)
    .executeTakeFirstOrThrow();
  assert.deepEqual(row, { kind: 'file', size_bytes: bytes.length, filename: 'log.txt' });
  // The same host can read it back through the download route.
  const back = await fetch(`${plane.httpUrl}/agent/v1/artifacts/${sha256}`, {
    headers: { authorization: `Bearer ${host.credential}` },
  });
  assert.deepEqual(Buffer.from(await back.arrayBuffer()), bytes);
});

test('uploads are refused without a credential, for a tenant not on the host, and past the size limit', async () => {
  assert.equal((await put({ tenant_id: tenantId }, new Uint8Array(4))).status, 401);
  assert.equal((await put({ tenant_id: 'someone-else' }, new Uint8Array(4), host.credential)).status, 403);
  const big = await put(
    { tenant_id: tenantId, filename: 'big' },
    new Uint8Array(2 * 1024 * 1024),
    host.credential,
  );
  assert.equal(big.status, 413);
  const staged = await readdir(join(testPlane.dataDir, 'uploads'));
  assert.deepEqual(staged, [], 'nothing is left staged');
  const rows = await plane.deps.db
    .selectFrom('artifact')
    .select('filename')
    .where('filename', '=', 'big')
    .execute();
  assert.equal(rows.length, 0);
});
