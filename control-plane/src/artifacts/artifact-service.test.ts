import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { access, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Code } from '@connectrpc/connect';
import { ArtifactKind, ArtifactService, UploadState } from '@cphone/proto';
import { connectError, startTestApi, type TestApi } from '../api/test-api.js';
import { issueHostCredential, revokeHostCredentials } from '../hosts/credentials.js';
import { newHostRow } from '../hosts/host-row.js';
import type { Database } from '../store/schema.js';
import { createTestStore, type TestDatabase } from '../testing.js';
import { mountAgentArtifacts } from './agent-download.js';
import { artifactService, blobStoreFor, DOWNLOAD_CHUNK_BYTES } from './artifact-service.js';

const APK = await readFile(new URL('../../../host-agent/fixtures/test-app.apk', import.meta.url));
const MAX_ARTIFACT_BYTES = 64 * 1024;

let store: TestDatabase<Database>;
let api: TestApi;
let token = '';
let otherToken = '';

const sha = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(data: Buffer): number {
  let c = 0xffffffff;
  for (const byte of data) c = (crcTable[(c ^ byte) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A valid zip with one stored file, to prove a zip without AndroidManifest.xml is refused. */
function zipOf(name: string, content: string): Buffer {
  const data = Buffer.from(content);
  const file = Buffer.from(name);
  const crc = crc32(data);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(data.length, 18);
  local.writeUInt32LE(data.length, 22);
  local.writeUInt16LE(file.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(20, 6);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(data.length, 20);
  central.writeUInt32LE(data.length, 24);
  central.writeUInt16LE(file.length, 28);
  const localSize = local.length + file.length + data.length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + file.length, 12);
  end.writeUInt32LE(localSize, 16);
  return Buffer.concat([local, file, data, central, file, end]);
}

before(async () => {
  store = await createTestStore();
  api = await startTestApi({
    db: store.db,
    config: { maxArtifactBytes: MAX_ARTIFACT_BYTES },
    routes: (router, deps) => router.service(ArtifactService, artifactService(deps)),
    extend: (app, deps) => mountAgentArtifacts(app, { db: deps.db, blobs: blobStoreFor(deps.config) }),
  });
  await api.tenant('t_a', 'customer', 'platform');
  await api.tenant('t_b', 'customer', 'platform');
  token = await api.token('t_a', 'tenant_user');
  otherToken = await api.token('t_b', 'tenant_admin');
});

after(async () => {
  await api?.close();
  await store?.close();
});

const blobPath = (hash: string) => join(api.deps.config.dataDir, 'blobs', 'sha256', hash.slice(0, 2), hash);
const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

async function assertNothingLeft(uploadId: string, ...hashes: string[]) {
  const artifacts = await store.db
    .selectFrom('artifact')
    .select('sha256')
    .where('sha256', 'in', hashes)
    .execute();
  assert.deepEqual(artifacts, [], 'no artifact row');
  for (const hash of hashes) assert.equal(await exists(blobPath(hash)), false, 'no blob');
  assert.equal(await exists(join(api.deps.config.dataDir, 'uploads', uploadId)), false, 'no staged file');
  const upload = await api.client(ArtifactService, token).getUpload({ uploadId });
  assert.equal(upload.upload?.state, UploadState.FAILED);
}

/** Creates an upload and sends `data` in one chunk; returns the upload id. */
async function uploadWhole(kind: ArtifactKind, data: Buffer, declaredSha = sha(data)): Promise<string> {
  const client = api.client(ArtifactService, token);
  const { upload } = await client.createUpload({
    kind,
    filename: 'x.bin',
    sizeBytes: BigInt(data.length),
    sha256: declaredSha,
  });
  const uploadId = upload?.uploadId ?? '';
  await client.uploadChunk({ uploadId, offset: 0n, data });
  return uploadId;
}

test('an APK uploaded in chunks resumes after a client restart and finalizes with its manifest facts', async () => {
  const hash = sha(APK);
  const first = api.client(ArtifactService, token);
  const created = await first.createUpload({
    requestId: 'apk-1',
    kind: ArtifactKind.APK,
    filename: 'test-app.apk',
    sizeBytes: BigInt(APK.length),
    sha256: hash,
  });
  const uploadId = created.upload?.uploadId ?? '';
  assert.equal(created.upload?.maxChunkBytes, 4 * 1024 * 1024);
  assert.equal(
    (await first.uploadChunk({ uploadId, offset: 0n, data: APK.subarray(0, 200) })).committedOffset,
    200n,
  );
  assert.equal(
    (await first.uploadChunk({ uploadId, offset: 200n, data: APK.subarray(200, 400) })).committedOffset,
    400n,
  );

  // A new client (the old one crashed) asks where to resume.
  const second = api.client(ArtifactService, token);
  const resumed = await second.getUpload({ uploadId });
  assert.equal(resumed.upload?.committedOffset, 400n);
  assert.equal(resumed.upload?.state, UploadState.OPEN);
  assert.equal(
    (await second.uploadChunk({ uploadId, offset: 200n, data: APK.subarray(200, 400) })).committedOffset,
    400n,
    'a committed chunk is acknowledged again',
  );
  await assert.rejects(
    second.uploadChunk({ uploadId, offset: 300n, data: APK.subarray(300, 500) }),
    connectError(Code.FailedPrecondition, /expected offset is 400/),
  );
  await assert.rejects(
    second.uploadChunk({ uploadId, offset: 500n, data: APK.subarray(500) }),
    connectError(Code.FailedPrecondition, /expected offset is 400/),
  );
  await assert.rejects(
    second.finalizeUpload({ uploadId }),
    connectError(Code.FailedPrecondition, /400 of 632/),
  );
  await assert.rejects(
    second.uploadChunk({
      uploadId,
      offset: 400n,
      data: Buffer.concat([APK.subarray(400), Buffer.from('extra')]),
    }),
    connectError(Code.InvalidArgument, /size_bytes/),
  );
  await second.uploadChunk({ uploadId, offset: 400n, data: APK.subarray(400) });
  const { artifact } = await second.finalizeUpload({ uploadId });
  assert.equal(artifact?.sha256, hash);
  assert.equal(artifact?.sizeBytes, BigInt(APK.length));
  assert.equal(artifact?.apk?.packageName, 'dev.cphone.testapp');
  assert.equal(artifact?.apk?.versionCode, 3n);
  assert.equal(artifact?.apk?.versionName, '1.2.0');
  assert.equal(artifact?.apk?.minSdk, 21);
  assert.deepEqual(await readFile(blobPath(hash)), APK);
  assert.deepEqual(await readdir(join(api.deps.config.dataDir, 'uploads')), [], 'the staged file is gone');
  assert.equal((await second.finalizeUpload({ uploadId })).artifact?.sha256, hash, 'finalize is retry-safe');

  const again = await second.createUpload({
    kind: ArtifactKind.APK,
    filename: 'same.apk',
    sizeBytes: BigInt(APK.length),
    sha256: hash,
  });
  assert.equal(again.existingArtifact?.sha256, hash, 'known content needs no bytes');
  assert.equal(again.upload, undefined);
  assert.equal((await second.getArtifact({ sha256: hash })).artifact?.filename, 'test-app.apk');
  const listed = await second.listArtifacts({ kind: ArtifactKind.APK, packageName: 'dev.cphone.testapp' });
  assert.deepEqual(
    listed.artifacts.map((a) => a.sha256),
    [hash],
  );

  const other = api.client(ArtifactService, otherToken);
  await assert.rejects(other.getArtifact({ sha256: hash }), connectError(Code.NotFound, new RegExp(hash)));
  await assert.rejects(other.getUpload({ uploadId }), connectError(Code.NotFound));
  await assert.rejects(
    other.getArtifact({ tenantId: 't_a', sha256: hash }),
    connectError(Code.NotFound, /t_a/),
  );
});

test('creating an upload validates kind, size, sha256 and filename', async () => {
  const client = api.client(ArtifactService, token);
  const good = { kind: ArtifactKind.FILE, filename: 'a.txt', sizeBytes: 10n, sha256: sha(Buffer.from('x')) };
  await assert.rejects(
    client.createUpload({ ...good, sizeBytes: BigInt(MAX_ARTIFACT_BYTES + 1) }),
    connectError(Code.InvalidArgument, /size_bytes/),
  );
  await assert.rejects(
    client.createUpload({ ...good, sha256: 'ABC' }),
    connectError(Code.InvalidArgument, /sha256/),
  );
  await assert.rejects(
    client.createUpload({ ...good, kind: ArtifactKind.UNSPECIFIED }),
    connectError(Code.InvalidArgument, /kind/),
  );
  await assert.rejects(
    client.createUpload({ ...good, filename: '../x' }),
    connectError(Code.InvalidArgument, /filename/),
  );
  await assert.rejects(client.createUpload({ ...good, tenantId: 't_b' }), connectError(Code.NotFound, /t_b/));
});

test('a sha256 mismatch fails the upload and leaves nothing behind', async () => {
  const data = Buffer.from('these are not the bytes you declared');
  const declared = sha(Buffer.from('something else'));
  const uploadId = await uploadWhole(ArtifactKind.FILE, data, declared);
  await assert.rejects(
    api.client(ArtifactService, token).finalizeUpload({ uploadId }),
    connectError(Code.InvalidArgument, /sha256/),
  );
  await assertNothingLeft(uploadId, declared, sha(data));
});

test('an APK that is not a zip, or a zip without a manifest, is INVALID_ARGUMENT with nothing left', async () => {
  const notZip = Buffer.from('definitely not a zip file');
  const first = await uploadWhole(ArtifactKind.APK, notZip);
  await assert.rejects(
    api.client(ArtifactService, token).finalizeUpload({ uploadId: first }),
    connectError(Code.InvalidArgument, /not an APK/),
  );
  await assertNothingLeft(first, sha(notZip));

  const zip = zipOf('classes.dex', 'no manifest here');
  const second = await uploadWhole(ArtifactKind.APK, zip);
  await assert.rejects(
    api.client(ArtifactService, token).finalizeUpload({ uploadId: second }),
    connectError(Code.InvalidArgument, /AndroidManifest/),
  );
  await assertNothingLeft(second, sha(zip));
  await assert.rejects(
    api.client(ArtifactService, token).uploadChunk({ uploadId: second, offset: 0n, data: zip }),
    connectError(Code.FailedPrecondition, /failed/),
  );
});

test('agents download blobs with a live host credential, whole or by range', async () => {
  const hash = sha(APK);
  const url = `${api.url}/agent/v1/artifacts/${hash}`;
  await store.db
    .insertInto('host')
    .values(newHostRow({ id: 'host_dl', name: 'download-node', arch: 'arm64' }))
    .execute();
  const { credential } = await issueHostCredential(store.db, 'host_dl');
  const auth = { authorization: `Bearer ${credential}` };

  assert.equal((await fetch(url)).status, 401);
  assert.equal((await fetch(url, { headers: { authorization: `Bearer ${credential}x` } })).status, 401);
  const whole = await fetch(url, { headers: auth });
  assert.equal(whole.status, 200);
  assert.equal(whole.headers.get('content-length'), String(APK.length));
  assert.equal(whole.headers.get('x-content-sha256'), hash);
  assert.deepEqual(Buffer.from(await whole.arrayBuffer()), APK);
  const tail = await fetch(url, { headers: { ...auth, range: 'bytes=600-' } });
  assert.equal(tail.status, 206);
  assert.equal(tail.headers.get('content-range'), `bytes 600-631/${APK.length}`);
  assert.deepEqual(Buffer.from(await tail.arrayBuffer()), APK.subarray(600));
  assert.equal((await fetch(url, { headers: { ...auth, range: 'bytes=9999-' } })).status, 416);
  assert.equal(
    (await fetch(`${api.url}/agent/v1/artifacts/${'0'.repeat(64)}`, { headers: auth })).status,
    404,
  );

  await revokeHostCredentials(store.db, 'host_dl', new Date());
  assert.equal((await fetch(url, { headers: auth })).status, 401);
});

test('an artifact downloads whole or from an offset, in bounded chunks, only by its own tenant', async () => {
  // Larger than one chunk, so the stream has several.
  const data = Buffer.alloc(DOWNLOAD_CHUNK_BYTES + 1000, 7);
  data.write('the end', data.length - 7);
  const big = await startTestApi({
    db: store.db,
    config: { maxArtifactBytes: data.length },
    routes: (router, deps) => router.service(ArtifactService, artifactService(deps)),
  });
  try {
    await big.tenant('t_dl', 'customer', 'platform');
    await big.tenant('t_dl_other', 'customer', 'platform');
    const client = big.client(ArtifactService, await big.token('t_dl', 'tenant_user'));
    const { upload } = await client.createUpload({
      kind: ArtifactKind.FILE,
      filename: 'big.bin',
      sizeBytes: BigInt(data.length),
      sha256: sha(data),
    });
    const uploadId = upload?.uploadId ?? '';
    await client.uploadChunk({ uploadId, offset: 0n, data });
    await client.finalizeUpload({ uploadId });

    const read = async (offset: bigint) => {
      const chunks: { offset: bigint; size: number }[] = [];
      const parts: Uint8Array[] = [];
      for await (const c of client.downloadArtifact({ sha256: sha(data), offset })) {
        chunks.push({ offset: c.offset, size: c.data.length });
        parts.push(c.data);
      }
      return { chunks, bytes: Buffer.concat(parts) };
    };
    const whole = await read(0n);
    assert.ok(whole.bytes.equals(data), 'the whole artifact, byte for byte');
    assert.ok(whole.chunks.length >= 2 && whole.chunks.every((c) => c.size <= DOWNLOAD_CHUNK_BYTES));
    assert.deepEqual(
      whole.chunks.map((c) => c.offset),
      whole.chunks.map((_, i) => BigInt(whole.chunks.slice(0, i).reduce((n, c) => n + c.size, 0))),
      'each chunk says where it begins',
    );
    const rest = await read(BigInt(data.length - 7));
    assert.equal(rest.bytes.toString(), 'the end');
    assert.equal((await read(BigInt(data.length))).bytes.length, 0, 'from the end: nothing');
    await assert.rejects(read(BigInt(data.length + 1)), connectError(Code.InvalidArgument, /offset/));
    const other = big.client(ArtifactService, await big.token('t_dl_other', 'tenant_admin'));
    await assert.rejects(async () => {
      for await (const _ of other.downloadArtifact({ sha256: sha(data) }))
        assert.fail('another tenant read a chunk');
    }, connectError(Code.NotFound));
  } finally {
    await big.close();
  }
});
