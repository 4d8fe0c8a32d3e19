import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { access, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Code } from '@connectrpc/connect';
import { ArtifactKind, ArtifactService, UploadState } from '@cphone/proto';
import type { KyselyPlugin } from 'kysely';
import pino from 'pino';
import { connectError, startTestApi, type TestApi } from '../api/test-api.js';
import { ManualClock } from '../clock.js';
import type { Database } from '../store/schema.js';
import { createTestStore, type TestDatabase } from '../testing.js';
import { artifactService, UPLOAD_TTL_MS } from './artifact-service.js';
import { UploadSweeper } from './upload-sweeper.js';

const T0 = new Date('2031-03-01T12:00:00Z');
const MINUTE = 60_000;

let store: TestDatabase<Database>;
let api: TestApi;
let token = '';
const clock = new ManualClock({ start: T0 });
const logLines: Record<string, unknown>[] = [];
let sweeper: UploadSweeper;
let otherDir = '';

const sha = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const staged = (name: string) => join(api.deps.config.dataDir, 'uploads', name);
const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );
const client = () => api.client(ArtifactService, token);

before(async () => {
  store = await createTestStore();
  api = await startTestApi({
    db: store.db,
    routes: (router, deps) => router.service(ArtifactService, artifactService({ ...deps, clock })),
  });
  await api.tenant('t_a', 'customer', 'platform');
  token = await api.token('t_a', 'tenant_user');
  const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(JSON.parse(line)) });
  sweeper = new UploadSweeper({ db: store.db, clock, logger, config: api.deps.config });
  otherDir = await mkdtemp(join(tmpdir(), 'cphone-sweep-'));
});

after(async () => {
  await sweeper?.close();
  await api?.close();
  await store?.close();
  if (otherDir) await rm(otherDir, { recursive: true, force: true });
});

/** Creates an upload of `data` at the clock's time and sends its first `sent` bytes. */
async function startUpload(data: Buffer, sent: number): Promise<string> {
  const { upload } = await client().createUpload({
    kind: ArtifactKind.FILE,
    filename: 'data.bin',
    sizeBytes: BigInt(data.length),
    sha256: sha(data),
  });
  const uploadId = upload?.uploadId ?? '';
  await client().uploadChunk({ uploadId, offset: 0n, data: data.subarray(0, sent) });
  return uploadId;
}

/** A file in a staging folder, last written `ageMs` before the clock's time. */
async function strayFile(dir: string, name: string, ageMs: number): Promise<void> {
  const path = join(dir, 'uploads', name);
  await mkdir(join(dir, 'uploads'), { recursive: true });
  await writeFile(path, 'stray');
  const mtime = new Date(clock.now().getTime() - ageMs);
  await utimes(path, mtime, mtime);
}

test('an expired open upload is failed and its bytes removed; a live one keeps them', async () => {
  const abandonedData = Buffer.from('an upload its client gave up on');
  const abandoned = await startUpload(abandonedData, 10);
  clock.set(new Date(T0.getTime() + UPLOAD_TTL_MS - 60 * MINUTE));
  const liveData = Buffer.from('an upload still in progress');
  const live = await startUpload(liveData, 5);
  clock.set(new Date(T0.getTime() + UPLOAD_TTL_MS + MINUTE));

  const result = await sweeper.sweep();
  assert.deepEqual(result, { failed: [abandoned], removed: [abandoned] });
  assert.equal(await exists(staged(abandoned)), false, 'the expired upload has no staged file');
  assert.deepEqual(await readFile(staged(live)), liveData.subarray(0, 5), 'the live upload keeps its bytes');
  assert.equal((await client().getUpload({ uploadId: abandoned })).upload?.state, UploadState.FAILED);
  assert.equal((await client().getUpload({ uploadId: live })).upload?.state, UploadState.OPEN);
  const logged = logLines.find((l) => l.msg === 'uploads swept');
  assert.equal(logged?.level, 30, 'logged at info');
  assert.equal(logged?.failedCount, 1);
  assert.equal(logged?.removedCount, 1);

  // A client resuming the swept upload is told it cannot, not that its bytes went missing.
  await assert.rejects(
    client().uploadChunk({ uploadId: abandoned, offset: 10n, data: abandonedData.subarray(10) }),
    connectError(Code.FailedPrecondition, /is failed, not open/),
  );
  await assert.rejects(
    client().finalizeUpload({ uploadId: abandoned }),
    connectError(Code.FailedPrecondition, /is failed, not open/),
  );

  assert.deepEqual(await sweeper.sweep(), { failed: [], removed: [] }, 'a second pass finds nothing');
  await client().uploadChunk({ uploadId: live, offset: 5n, data: liveData.subarray(5) });
  const { artifact } = await client().finalizeUpload({ uploadId: live });
  assert.equal(artifact?.sha256, sha(liveData), 'the live upload finishes after the sweep');
});

test("a finalized upload's leftover staged file is removed, and its artifact kept", async () => {
  const data = Buffer.from('finalized, then the server crashed before removing the staged file');
  const uploadId = await startUpload(data, data.length);
  const { artifact } = await client().finalizeUpload({ uploadId });
  await writeFile(staged(uploadId), data);

  assert.deepEqual(await sweeper.sweep(), { failed: [], removed: [uploadId] });
  assert.equal(await exists(staged(uploadId)), false);
  assert.equal((await client().getUpload({ uploadId })).upload?.state, UploadState.FINALIZED);
  assert.equal((await client().getArtifact({ sha256: sha(data) })).artifact?.sha256, artifact?.sha256);
});

test('a staged file with no upload row is removed once a minute old, an agent upload file once an hour old', async () => {
  const dir = api.deps.config.dataDir;
  await strayFile(dir, 'upl_orphan_old', 2 * MINUTE);
  await strayFile(dir, 'upl_orphan_new', 10_000);
  await strayFile(dir, 'agent-stranded', 2 * 60 * MINUTE);
  await strayFile(dir, 'agent-stalled', 10 * MINUTE);

  const first = await sweeper.sweep();
  assert.deepEqual(first.removed.toSorted(), ['agent-stranded', 'upl_orphan_old']);
  assert.equal(await exists(staged('upl_orphan_new')), true, 'a file being created right now is kept');
  assert.equal(await exists(staged('agent-stalled')), true, 'an agent upload in flight is kept');

  clock.advance(MINUTE);
  assert.deepEqual((await sweeper.sweep()).removed, ['upl_orphan_new'], 'kept only until a minute old');
  assert.equal(await exists(staged('agent-stalled')), true);
});

test('a pass that fails is logged at warn, and the next pass runs', async () => {
  let failing = false;
  const plugin: KyselyPlugin = {
    transformQuery(args) {
      if (failing) throw new Error('database unavailable');
      return args.node;
    },
    transformResult: async (args) => args.result,
  };
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const other = new UploadSweeper({
    db: store.db.withPlugin(plugin),
    clock,
    logger,
    config: { dataDir: otherDir },
  });
  try {
    assert.deepEqual(await other.tick(), { failed: [], removed: [] }, 'no staging folder yet: nothing to do');

    await strayFile(otherDir, 'upl_orphan', 5 * MINUTE);
    failing = true;
    assert.equal(await other.tick(), undefined);
    assert.equal(await exists(join(otherDir, 'uploads', 'upl_orphan')), true);
    const warned = lines.find((l) => l.msg === 'upload sweep failed');
    assert.equal(warned?.level, 40, 'logged at warn');

    failing = false;
    assert.deepEqual(await other.tick(), { failed: [], removed: ['upl_orphan'] });
    assert.equal(await exists(join(otherDir, 'uploads', 'upl_orphan')), false);
  } finally {
    await other.close();
  }
});
