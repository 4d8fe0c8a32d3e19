// `cphone hosts` as a process against the real control plane and agent: golden JSON, a table that
// fits a narrow terminal, exit codes, and a drain followed in a real pseudo-terminal (tmux) that is
// interrupted with Ctrl-C and picked up again with --status.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { DeviceState, HostState } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { parse } from 'yaml';
// @ts-expect-error plain JavaScript build script, no types
import { BUNDLE } from '../../cli/build.mjs';
import { assertGolden } from './golden.js';
import { type CliPlatform, startCliPlatform } from './harness.js';

let p: CliPlatform;
before(async () => {
  p = await startCliPlatform();
});
after(() => p?.close());

/** What changes with the machine and the moment: load, heartbeats, versions. */
function stableHost(host: Record<string, unknown>): Record<string, unknown> {
  const { load, lastHeartbeatTime, updateTime, agentVersion, hostname, capacity, allocatable, ...rest } =
    host;
  assert.ok(lastHeartbeatTime, 'a connected host has a heartbeat');
  assert.ok(capacity && allocatable, 'capacity and allocatable are reported');
  return rest;
}

test('hosts get: JSON in the API shape, YAML, names, and a table that fits the terminal', async () => {
  const phone = await p.h.createPhone('cli-hosts-1');
  await p.h.waitForState(phone.deviceId, DeviceState.RUNNING);
  const json = await p.cli(['hosts', 'get', '-o', 'json']);
  assert.equal(json.code, 0, json.stderr);
  const doc = JSON.parse(json.stdout) as { items: Record<string, unknown>[] };
  assert.equal(doc.items.length, 1);
  await assertGolden('hosts-get.json', `${JSON.stringify({ items: doc.items.map(stableHost) }, null, 2)}\n`);

  const one = await p.cli(['hosts', 'get', 'e2e-host', '-o', 'yaml']);
  assert.equal(one.code, 0, one.stderr);
  assert.equal((parse(one.stdout) as { name: string }).name, 'e2e-host');

  const names = await p.cli(['hosts', 'get', '-o', 'name', '--selector', 'pool=e2e']);
  assert.equal(names.stdout, 'e2e-host\n');
  const none = await p.cli(['hosts', 'get', '-l', 'pool=elsewhere']);
  assert.equal(none.code, 0);
  assert.equal(none.stdout, '');
  assert.match(none.stderr, /No resources found/);

  for (const [columns, format] of [
    ['60', 'table'],
    ['200', 'wide'],
  ] as const) {
    const table = await p.cli(['hosts', 'get', '-o', format], { env: { COLUMNS: columns } });
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^NAME\s+STATE\s+PHONES/);
    assert.match(lines[1] ?? '', /^e2e-host\s+Ready\s+1\/\d+/);
    for (const line of lines)
      assert.ok([...line].length <= Number(columns), `"${line}" fits ${columns} columns`);
    if (format === 'wide') assert.match(lines[1] ?? '', /pool=e2e/, 'wide shows labels when there is room');
  }
});

test('hosts describe names capacity, conditions and the phones on the host', async () => {
  const r = await p.cli(['hosts', 'describe', p.h.hostId]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Name: +e2e-host$/m);
  assert.match(r.stdout, /^ {2}allocatable: +\d+ phones, [\d.]+ vCPU/m);
  assert.match(r.stdout, /^ {2}Connected +True/m);
  assert.match(r.stdout, /^ {2}Schedulable +True/m);
  assert.match(r.stdout, /^Phones \(1\):$/m);
  assert.match(r.stdout, /cli-hosts-1 +dev_\S+ +Running/);
});

test('exit codes name the failure', async () => {
  const missing = await p.cli(['hosts', 'describe', 'no-such-host']);
  assert.equal(missing.code, 4);
  assert.match(missing.stderr, /NOT_FOUND: host "no-such-host"/);
  const bad = await p.cli(['hosts', 'get'], { env: { CPHONE_API_KEY: 'cpk_notakey' } });
  assert.equal(bad.code, 5);
  assert.match(bad.stderr, /^error: UNAUTHENTICATED: .*\(request id \S+\)$/m);
  const invalid = await p.cli(['hosts', 'enroll', 'Not A Valid Name!']);
  assert.equal(invalid.code, 3, invalid.stderr);
  assert.match(invalid.stderr, /INVALID_ARGUMENT: .*name/);
  const unconfirmed = await p.cli(['hosts', 'delete', 'e2e-host']);
  assert.equal(unconfirmed.code, 2);
  assert.match(unconfirmed.stderr, /add --yes/);
  assert.equal((await p.cli(['hosts', 'get', '-o', 'name'])).stdout, 'e2e-host\n', 'nothing was deleted');
  const typo = await p.cli(['hosts', 'gte']);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /Did you mean get\?/);
});

test('hosts explain says where a spec fits and why not elsewhere', async () => {
  const fits = await p.cli(['hosts', 'explain', '--image', p.h.imageId, '--cpu', '1', '--memory', '1Gi']);
  assert.equal(fits.code, 0, fits.stderr);
  assert.match(fits.stdout, /^e2e-host +yes +[\d.]+/m);
  assert.match(fits.stdout, /^fits: 1 on e2e-host$/m);
  const tooBig = await p.cli([
    'hosts',
    'explain',
    '--image',
    p.h.imageId,
    '--cpu',
    '1',
    '--memory',
    '1Gi',
    '--count',
    '100',
  ]);
  assert.equal(tooBig.code, 8, tooBig.stdout + tooBig.stderr);
  assert.match(tooBig.stderr, /RESOURCE_EXHAUSTED: does not fit/);
});

/** tmux on a private socket: a real pseudo-terminal 120 columns wide. */
function tmux(...args: string[]): string {
  const r = spawnSync('tmux', ['-L', `cphone-cli-test-${process.pid}`, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test('drain: a live progress bar in a terminal; Ctrl-C stops following, not the drain; --status picks it up', async () => {
  after(() => {
    spawnSync('tmux', ['-L', `cphone-cli-test-${process.pid}`, 'kill-server']);
  });
  const second = await p.h.createPhone('cli-hosts-2');
  await p.h.waitForState(second.deviceId, DeviceState.RUNNING);
  // Without its agent the host cannot stop its phones: the drain stays in progress until it returns.
  await p.agent?.close();
  const env = Object.entries(p.env)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  tmux(
    'new-session',
    '-d',
    '-x',
    '120',
    '-y',
    '20',
    `env ${env} ${process.execPath} ${BUNDLE} hosts drain e2e-host --mode stop --reason test; echo EXIT=$?; sleep 600`,
  );
  const screen = () => tmux('capture-pane', '-p');
  await waitFor(
    'the progress bar',
    async () => screen(),
    (s) => /draining e2e-host .*remaining 2/.test(s),
    { timeoutMs: 20_000 },
  );
  tmux('send-keys', 'C-c');
  const stopped = await waitFor(
    'the exit',
    async () => screen(),
    (s) => /EXIT=\d+/.test(s),
    { timeoutMs: 10_000 },
  );
  assert.match(stopped, /the drain goes on\. See it with: cphone hosts drain e2e-host --status/);
  assert.match(stopped, /EXIT=130/);
  const status = await p.cli(['hosts', 'drain', 'e2e-host', '--status', '--detach', '-o', 'json']);
  assert.equal(status.code, 0, status.stderr);
  assert.equal(JSON.parse(status.stdout).state, 'IN_PROGRESS', 'the drain went on without the CLI');

  p.agent = await p.h.startAgent();
  // Followed to its end (or shown ended, if the agent was quicker than this command).
  const followed = await p.cli(['hosts', 'drain', 'e2e-host', '--status']);
  assert.equal(followed.code, 0, followed.stderr);
  assert.match(
    followed.stdout + followed.stderr,
    /drain of e2e-host completed: Stop: 0 migrated, 0 failed, 0 remaining of 2/,
  );
  const phones = await p.h.devices.listDevices({ tenantId: p.h.tenantId });
  assert.deepEqual(
    phones.devices.map((d) => DeviceState[d.state]),
    ['STOPPED', 'STOPPED'],
    'the drain stopped both phones',
  );
  const uncordoned = await p.cli(['hosts', 'uncordon', 'e2e-host']);
  assert.equal(uncordoned.code, 0, uncordoned.stderr);
  await p.h.waitForHost(HostState.READY, true);
});

test('--dry-run runs every check, placement included, and creates nothing', async () => {
  const enroll = await p.cli(['hosts', 'enroll', 'rack9-node01', '--dry-run']);
  assert.equal(enroll.code, 0, enroll.stderr);
  assert.match(enroll.stdout, /would be enrolled \(dry run: nothing was created\)/);
  assert.equal((await p.cli(['hosts', 'get', '-o', 'name'])).stdout, 'e2e-host\n');

  const before = (await p.h.devices.listDevices({ tenantId: p.h.tenantId })).devices.length;
  const create = [
    'devices',
    'create',
    '--tenant',
    p.h.tenantId,
    '--image',
    p.h.imageId,
    '--cpu',
    '1',
    '--memory',
    '1Gi',
  ];
  const fits = await p.cli([...create, '--count', '2', '--dry-run', '-o', 'json']);
  assert.equal(fits.code, 0, fits.stderr);
  const preview = JSON.parse(fits.stdout) as {
    dryRun: boolean;
    items: { hostId: string; deviceId?: string }[];
  };
  assert.equal(preview.items.length, 2);
  assert.ok(
    preview.items.every((d) => d.hostId === p.h.hostId && !d.deviceId),
    'placed on the host, given no id',
  );
  const tooMany = await p.cli([...create, '--count', '100', '--dry-run']);
  assert.equal(tooMany.code, 8, tooMany.stderr);
  assert.match(tooMany.stderr, /RESOURCE_EXHAUSTED/);
  assert.equal(
    (await p.h.devices.listDevices({ tenantId: p.h.tenantId })).devices.length,
    before,
    'nothing was created',
  );
});

test('enroll prints the one-time credential and the start line; revoke and delete retire the host', async () => {
  const enrolled = await p.cli(['hosts', 'enroll', 'rack9-node02', '--label', 'zone=test']);
  assert.equal(enrolled.code, 0, enrolled.stderr);
  const credential = /credential \(shown once, keep it secret\): (\S+)/.exec(enrolled.stdout)?.[1];
  assert.ok(credential, enrolled.stdout);
  assert.ok(
    enrolled.stdout.includes(
      `printf '%s\\n' '${credential}' | sudo install -m 600 -o cphone-agent -g cphone-agent /dev/stdin /etc/cphone/agent.credential`,
    ),
    enrolled.stdout,
  );
  assert.match(enrolled.stdout, /sudo cphone-agent doctor/);
  assert.match(enrolled.stdout, /sudo systemctl enable --now cphone-agent\.service/);
  assert.equal((await p.cli(['hosts', 'get', '-l', 'zone=test', '-o', 'name'])).stdout, 'rack9-node02\n');
  const rotated = await p.cli(['hosts', 'revoke', 'rack9-node02', '--rotate', '--yes']);
  assert.equal(rotated.code, 0, rotated.stderr);
  assert.match(rotated.stdout, /new credential \(shown once\): \S+/);
  const deleted = await p.cli(['hosts', 'delete', 'rack9-node02', '--yes']);
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.equal((await p.cli(['hosts', 'get', '-o', 'name'])).stdout, 'e2e-host\n');
});
