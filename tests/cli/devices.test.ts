// `cphone devices …` run as a process against the real control plane, a real agent and virtual
// phones (tests/cli/harness.ts). One platform for the file; the tests run in order and build on each
// other's phones (qa-1..3).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ApiKeyService, ArtifactService, type Device, Role } from '@cphone/proto/api';
import { waitFor } from '@cphone/proto/testing';
// @ts-expect-error plain JavaScript build script, no types
import { BUNDLE } from '../../cli/build.mjs';
import { startPhones } from '../e2e/harness.js';
import { assertGolden } from './golden.js';
import { type CliPlatform, startCliPlatform } from './harness.js';

const APK = new URL('../../host-agent/fixtures/test-app.apk', import.meta.url).pathname;

let p: CliPlatform;
let phones: Awaited<ReturnType<typeof startPhones>>;
let work: string;
const ids = new Map<string, string>();

before(async () => {
  p = await startCliPlatform({ agent: false });
  phones = await startPhones(p.h);
  await p.h.startAgent({ deps: { runtime: phones.runtime } });
  work = await mkdtemp(join(tmpdir(), 'cphone-cli-devices-'));
});
after(async () => {
  await p?.close();
  await phones?.runtime.close();
  if (work) await rm(work, { recursive: true, force: true });
});

/** A CLI process that keeps running (follow, a slow upload), its output read as it comes. */
function startCli(args: readonly string[]): {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
} {
  const child = spawn(process.execPath, [BUNDLE as string, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...p.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exited };
}

async function listQa(): Promise<Device[]> {
  const { devices } = await p.h.devices.listDevices({ labelSelector: { team: 'qa' } });
  return devices;
}

test('create --count 3 run twice with one request id makes 3 phones, not 6, and --wait sees them running', async () => {
  const args = ['devices', 'create', '--image', p.h.imageId, '--name', 'qa', '--count', '3'];
  const flags = ['--label', 'team=qa', '--request-id', 'qa-batch-1', '--wait', '-o', 'json'];
  const first = await p.cli([...args, ...flags]);
  assert.equal(first.code, 0, first.stderr);
  const created = JSON.parse(first.stdout).items as {
    deviceId: string;
    displayName: string;
    state: string;
  }[];
  assert.deepEqual(
    created.map((d) => [d.displayName, d.state]),
    [
      ['qa-1', 'DEVICE_STATE_RUNNING'],
      ['qa-2', 'DEVICE_STATE_RUNNING'],
      ['qa-3', 'DEVICE_STATE_RUNNING'],
    ],
  );
  const again = await p.cli([...args, ...flags]);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(
    (JSON.parse(again.stdout).items as { deviceId: string }[]).map((d) => d.deviceId),
    created.map((d) => d.deviceId),
  );
  assert.equal((await listQa()).length, 3);
  for (const d of created) ids.set(d.displayName, d.deviceId);

  // Without --request-id the key comes from the command itself: a rerun creates nothing either.
  const solo = ['devices', 'create', '--image', p.h.imageId, '--name', 'solo', '--label', 'team=solo', '-q'];
  assert.equal((await p.cli(solo)).code, 0);
  assert.equal((await p.cli(solo)).code, 0);
  const { devices } = await p.h.devices.listDevices({ labelSelector: { team: 'solo' } });
  assert.equal(devices.length, 1);
});

test('get and describe print the API JSON (golden), tables fit the terminal and are sorted by name', async () => {
  const get = await p.cli(['devices', 'get', '-l', 'team=qa', '-o', 'json']);
  assert.equal(get.code, 0, get.stderr);
  await assertGolden('devices-get.json', get.stdout);
  const describe = await p.cli(['devices', 'describe', 'qa-1', '-o', 'json']);
  assert.equal(describe.code, 0, describe.stderr);
  // Event ids are one sequence over all phones: how qa-1's interleave with the others' varies.
  await assertGolden(
    'devices-describe.json',
    describe.stdout.replace(/"eventId": "\d+"/g, '"eventId": "<id>"'),
  );

  const text = await p.cli(['devices', 'describe', 'qa-1']);
  assert.match(text.stdout, /^State: +Running$/m);
  assert.match(text.stdout, /^Host: +e2e-host \(host_/m);
  assert.match(text.stdout, /^ +\S+ +Booting +Running/m, 'the events table');

  for (const columns of [60, 40]) {
    const table = await p.cli(['devices', 'get'], { env: { COLUMNS: String(columns) } });
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^NAME +STATE +HOST +IMAGE +AGE$/);
    for (const line of lines) assert.ok(line.length <= columns, `"${line}" is ${line.length} wide`);
    assert.deepEqual(
      lines.slice(1).map((l) => l.split(/\s+/)[0]),
      ['qa-1', 'qa-2', 'qa-3', 'solo'],
    );
    // At 40 columns the widest cells give way.
    if (columns === 40) assert.match(table.stdout, /^qa-1 +Running +e2e-host +android-1… +\S+$/m);
  }
  // In a pipe nothing is cut.
  const piped = await p.cli(['devices', 'get', '-o', 'wide']);
  assert.match(
    piped.stdout,
    /qa-1 +Running +e2e-host +android-14-e2e +\S+ +dev_\w+ +platform +127\.0\.0\.1:\d+ +team=qa +1 +1Gi/,
  );
  const names = await p.cli(['devices', 'get', '--state', 'running', '-l', 'team=qa', '-o', 'name']);
  assert.equal(names.stdout, 'qa-1\nqa-2\nqa-3\n');
});

test('failures exit with the code of their API error', async () => {
  const missing = await p.cli(['devices', 'get', 'no-such-phone']);
  assert.equal(missing.code, 4);
  assert.match(missing.stderr, /NOT_FOUND: device "no-such-phone" does not exist/);

  const badKey = await p.cli(['devices', 'get'], { env: { CPHONE_API_KEY: 'cpk_not-a-key' } });
  assert.equal(badKey.code, 5);
  assert.match(badKey.stderr, /UNAUTHENTICATED/);

  const { secret } = await p.h.client(ApiKeyService).createApiKey({
    tenantId: p.h.tenantId,
    displayName: 'customer user',
    role: Role.TENANT_USER,
  });
  const pinned = await p.cli(['devices', 'create', '--image', p.h.imageId, '--host', p.h.hostId], {
    env: { CPHONE_API_KEY: secret },
  });
  assert.equal(pinned.code, 5);
  assert.match(pinned.stderr, /PERMISSION_DENIED: requests\[0\]\.placement\.host_id/);

  const badSpec = await p.cli(['devices', 'create', '--image', p.h.imageId, '--memory', '100Mi']);
  assert.equal(badSpec.code, 3);
  assert.match(badSpec.stderr, /INVALID_ARGUMENT: .*memory_mib 100/);

  const noYes = await p.cli(['devices', 'delete', 'qa-1']);
  assert.equal(noYes.code, 2);
  assert.match(noYes.stderr, /add --yes/);
});

test('stop and start by selector, reporting each phone; one unknown name fails the run', async () => {
  const stop = await p.cli(['devices', 'stop', '-l', 'team=qa', '--wait']);
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal(stop.stdout.split('\n').filter((l) => /^device\/qa-\d stop requested$/.test(l)).length, 3);
  assert.deepEqual(
    (await listQa()).map((d) => d.state),
    [7, 7, 7],
  );
  const start = await p.cli(['devices', 'start', 'qa-1', 'no-such-phone']);
  assert.equal(start.code, 4);
  assert.match(start.stdout, /^device\/qa-1 start requested$/m);
  assert.match(start.stderr, /device\/no-such-phone: NOT_FOUND/);
  const all = await p.cli(['devices', 'start', '--selector', 'team=qa', '--wait', '-o', 'json']);
  assert.equal(all.code, 0, all.stderr);
  assert.equal((JSON.parse(all.stdout).items as { ok: boolean }[]).filter((i) => i.ok).length, 3);
  assert.deepEqual(
    (await listQa()).map((d) => d.state),
    [5, 5, 5],
  );
});

test('an interrupted install resumes the upload at the committed offset on the next run', async () => {
  const uploads = p.h.client(ArtifactService);
  // 632 bytes in 64-byte chunks at 128 B/s: several seconds, killed once the server holds some.
  const slow = startCli(['devices', 'install', 'qa-1', APK, '--chunk-size', '64', '--limit-rate', '128']);
  const uploadId = await waitFor(
    'the upload id on stderr',
    () => /upload (upl_\w+)/.exec(slow.err())?.[1],
    (id) => id !== undefined,
  );
  const before = await waitFor(
    'a committed chunk',
    async () => (await uploads.getUpload({ uploadId })).upload?.committedOffset ?? 0n,
    (offset) => offset > 0n,
  );
  slow.child.kill('SIGKILL');
  await slow.exited;
  const committed = (await uploads.getUpload({ uploadId })).upload?.committedOffset ?? 0n;
  assert.ok(committed >= before && committed < 632n, `committed ${committed}`);

  const rerun = await p.cli(['devices', 'install', 'qa-1', APK]);
  assert.equal(rerun.code, 0, rerun.stderr);
  // The same upload, from where the server stood (a chunk in flight at the kill may have landed since).
  const resumedAt = BigInt(
    new RegExp(`resuming upload ${uploadId} at (\\d+) of 632 bytes`).exec(rerun.stderr)?.[1] ?? -1,
  );
  assert.ok(resumedAt >= committed && resumedAt < 632n, rerun.stderr);
  assert.match(rerun.stdout, /^installed dev\.cphone\.testapp 1\.2\.0 \(version code 3\) on qa-1$/m);
  const listed = await p.cli(['devices', 'shell', 'qa-1', '--', 'pm', 'list', 'packages']);
  assert.match(listed.stdout, /package:dev\.cphone\.testapp/);
});

test('shell writes the output as is and exits with the remote exit code', async () => {
  const ok = await p.cli(['devices', 'shell', 'qa-1', '--', 'getprop', 'ro.build.version.release']);
  assert.equal(ok.code, 0);
  assert.equal(ok.stdout, '14\n');
  assert.equal((await p.cli(['devices', 'shell', 'qa-1', '--', 'sh', '-c', 'exit 3'])).code, 3);
  assert.equal((await p.cli(['devices', 'shell', 'qa-1', 'exit 3'])).code, 3);
  const failed = await p.cli(['devices', 'shell', 'qa-1', '--', 'am', 'start', '-n', 'no.such/.Activity']);
  assert.equal(failed.code, 1);
  assert.equal(failed.stdout, 'Starting: Intent { cmp=no.such/.Activity }\n');
  assert.match(
    failed.stderr,
    /^Error type 3\nError: Activity class \{no\.such\/\.Activity\} does not exist\.\n/,
  );
  // No command and no TTY: the script comes from stdin.
  assert.equal((await p.cli(['devices', 'shell', 'qa-1'], { input: 'exit 5\n' })).code, 5);
});

test('logs prints the tail, and -f prints only new lines until interrupted', async () => {
  const tail = await p.cli(['devices', 'logs', 'qa-1', '--lines', '50']);
  assert.equal(tail.code, 0, tail.stderr);
  assert.match(tail.stdout, /ActivityManager: boot completed/);
  const follow = startCli(['devices', 'logs', 'qa-1', '-f', '--interval', '200ms']);
  await waitFor(
    'the first dump',
    () => follow.out(),
    (o) => o.includes('boot completed'),
  );
  const started = await p.cli([
    'devices',
    'shell',
    'qa-1',
    '--',
    'am',
    'start',
    '-n',
    'dev.cphone.testapp/.Main',
  ]);
  assert.equal(started.code, 0, started.stderr);
  await waitFor(
    'the new line',
    () => follow.out(),
    (o) => o.includes('START u0 {cmp=dev.cphone.testapp/.Main}'),
  );
  follow.child.kill('SIGINT');
  assert.equal(await follow.exited, 0);
  assert.equal(follow.out().split('boot completed').length - 1, 1, 'no line printed twice');
});

test('push and pull carry a file both ways byte for byte', async () => {
  const local = join(work, 'data.bin');
  const bytes = randomBytes(300_000);
  await writeFile(local, bytes);
  const push = await p.cli(['devices', 'push', 'qa-2', local, '/sdcard/Download/', '--chunk-size', '64Ki']);
  assert.equal(push.code, 0, push.stderr);
  assert.match(push.stdout, /^pushed .*data\.bin -> qa-2:\/sdcard\/Download\/data\.bin \(293 KiB\)$/m);
  const back = join(work, 'back.bin');
  const pull = await p.cli(['devices', 'pull', 'qa-2', '/sdcard/Download/data.bin', back]);
  assert.equal(pull.code, 0, pull.stderr);
  assert.deepEqual(await readFile(back), bytes);
});

test('screenshot saves a PNG of the screen', async () => {
  const file = join(work, 'shot.png');
  const shot = await p.cli(['devices', 'screenshot', 'qa-1', '--out-file', file, '-o', 'json']);
  assert.equal(shot.code, 0, shot.stderr);
  assert.deepEqual(
    { ...JSON.parse(shot.stdout), captureTime: undefined, bytes: undefined },
    { file, widthPx: 720, heightPx: 1280, captureTime: undefined, bytes: undefined },
  );
  const png = await readFile(file);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const positional = join(work, 'positional.png');
  assert.equal((await p.cli(['devices', 'screenshot', 'qa-1', positional])).code, 0);
  assert.equal((await readFile(positional)).subarray(1, 4).toString(), 'PNG');
});

test('input reaches the phone: taps and keys as events, text in the focused field', async () => {
  const phone = phones.phone(ids.get('qa-3') ?? '');
  assert.equal((await p.cli(['devices', 'input', 'qa-3', 'tap', '100', '200'])).code, 0);
  assert.equal(
    (await p.cli(['devices', 'input', 'qa-3', 'swipe', '10', '900', '10', '100', '--duration', '150'])).code,
    0,
  );
  assert.deepEqual(phone.events.input.slice(-2), [
    { kind: 'tap', x: 100, y: 200 },
    { kind: 'swipe', x1: 10, y1: 900, x2: 10, y2: 100, durationMs: 150 },
  ]);
  assert.equal((await p.cli(['devices', 'input', 'qa-3', 'text', 'hello world'])).code, 0);
  assert.equal((await p.cli(['devices', 'input', 'qa-3', 'key', 'DEL'])).code, 0);
  const dump = await p.cli(['devices', 'shell', 'qa-3', '--', 'uiautomator', 'dump', '/dev/tty']);
  assert.match(dump.stdout, /text="hello worl"/);
  const bad = await p.cli(['devices', 'input', 'qa-3', 'key', 'NOPE']);
  assert.equal(bad.code, 2);
});

test('stream prints the console page of the phone, and the session in JSON', async () => {
  const json = await p.cli(['devices', 'stream', 'qa-1', '--control', '--ttl', '2m', '-o', 'json']);
  assert.equal(json.code, 0, json.stderr);
  const s = JSON.parse(json.stdout);
  assert.equal(s.url, `${p.h.plane.httpUrl}/#/phones/${ids.get('qa-1')}`);
  assert.equal(s.rights, 'CONTROL');
  assert.match(s.sfuUrl, /^wss?:\/\/127\.0\.0\.1:\d+/);
  assert.ok(s.token.length > 20);
  const text = await p.cli(['devices', 'stream', 'qa-1']);
  assert.equal(text.stdout, `${s.url}\n`);
});

test('delete by selector removes the phones', async () => {
  const del = await p.cli(['devices', 'delete', '-l', 'team=qa', '--yes', '--wait']);
  assert.equal(del.code, 0, del.stderr);
  assert.equal(del.stdout.split('\n').filter((l) => l.startsWith('device/qa-')).length, 3);
  assert.deepEqual(await listQa(), []);
});
