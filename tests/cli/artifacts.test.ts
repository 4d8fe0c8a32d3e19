// `cphone artifacts …` run as a process against the real control plane (no agent: artifacts live
// in the control plane's store). The tests run in order on one platform.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { assertGolden } from './golden.js';
import { type CliPlatform, startCliPlatform } from './harness.js';

const APK = new URL('../../host-agent/fixtures/test-app.apk', import.meta.url).pathname;

let p: CliPlatform;
let work: string;
let fileSha: string;
let data: Buffer;

before(async () => {
  p = await startCliPlatform({ agent: false });
  work = await mkdtemp(join(tmpdir(), 'cphone-cli-artifacts-'));
});
after(async () => {
  await p?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

test('upload prints the sha256; the same file again is not sent twice', async () => {
  // Bytes that are the same on every run, so the listing below can be a golden file.
  data = Buffer.concat(Array.from({ length: 3000 }, (_, i) => Buffer.from(`line ${i}\n`)));
  fileSha = createHash('sha256').update(data).digest('hex');
  const local = join(work, 'data.txt');
  await writeFile(local, data);
  const up = await p.cli(['artifacts', 'upload', local, '--chunk-size', '8Ki']);
  assert.equal(up.code, 0, up.stderr);
  assert.equal(up.stdout, `${fileSha}\n`);
  assert.match(up.stderr, /^data\.txt: upload upl_\w+ of 28890 bytes/m);
  const again = await p.cli(['artifacts', 'upload', local]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /data\.txt: already uploaded/);

  const apk = await p.cli(['artifacts', 'upload', APK]);
  assert.equal(apk.code, 0, apk.stderr);
  assert.equal(
    apk.stdout,
    `${createHash('sha256')
      .update(await readFile(APK))
      .digest('hex')}\n`,
  );
});

test('get and describe show the artifacts (JSON golden, APK facts)', async () => {
  const list = await p.cli(['artifacts', 'get', '-o', 'json']);
  assert.equal(list.code, 0, list.stderr);
  await assertGolden('artifacts-get.json', list.stdout);
  const table = await p.cli(['artifacts', 'get', '--kind', 'apk']);
  assert.match(
    table.stdout,
    /^SHA256 +KIND +FILENAME +SIZE +PACKAGE +AGE\n48b58fc00706 +Apk +test-app\.apk +632 B +dev\.cphone\.testapp@1\.2\.0 +\S+\n$/,
  );
  const described = await p.cli(['artifacts', 'describe', '48b58fc0']);
  assert.equal(described.code, 0, described.stderr);
  assert.match(described.stdout, /^ {2}package: +dev\.cphone\.testapp$/m);
  assert.match(described.stdout, /^ {2}version: +1\.2\.0 \(code 3\)$/m);
  const missing = await p.cli(['artifacts', 'describe', 'abcdef']);
  assert.equal(missing.code, 4);
  assert.match(missing.stderr, /NOT_FOUND: artifact "abcdef"/);
});

test('download writes the artifact, and continues a partial file from its size', async () => {
  const whole = join(work, 'whole.txt');
  const down = await p.cli(['artifacts', 'download', fileSha, '--file', whole]);
  assert.equal(down.code, 0, down.stderr);
  assert.deepEqual(await readFile(whole), data);

  const partial = join(work, 'partial.txt');
  await writeFile(partial, data.subarray(0, 10_000));
  const resumed = await p.cli(['artifacts', 'download', fileSha.slice(0, 10), '--file', partial]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /partial\.txt: resuming at 10000 of 28890 bytes/);
  assert.deepEqual(await readFile(partial), data);

  // A partial file that is not the artifact's start is caught by the sha256, not kept silently.
  const wrong = join(work, 'wrong.txt');
  await copyFile(APK, wrong);
  const refused = await p.cli(['artifacts', 'download', fileSha, '--file', wrong]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /does not match artifact .*remove it and download again/);
  const restarted = await p.cli(['artifacts', 'download', fileSha, '--file', wrong, '--restart']);
  assert.equal(restarted.code, 0, restarted.stderr);
  assert.deepEqual(await readFile(wrong), data);
});
