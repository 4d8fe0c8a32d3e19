// `cphone adb connect` as a process: a local port that Debian's adb reaches, carried through the
// platform (CreateAdbTunnel, the agent's wss endpoint with its own CA) to the phone's adbd; shell,
// a 16 MiB push and an install through it; another tenant's key cannot open one. And
// `cphone devices shell` on a terminal: an interactive shell through the same tunnel.
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DebianAdb } from '@cphone/host-agent/testing';
import { DeviceState } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
// @ts-expect-error plain JavaScript build script, no types
import { BUNDLE } from '../../cli/build.mjs';
import { type CliPlatform, startCliPlatform } from './harness.js';

let p: CliPlatform;
let adb: DebianAdb;
let work: string;
let agentCa: string;
before(async () => {
  p = await startCliPlatform();
  adb = new DebianAdb();
  work = await mkdtemp(join(tmpdir(), 'cphone-cli-adb-'));
  agentCa = join(p.h.agentDataDir, 'stream-tls', 'ca.pem');
  const phone = await p.h.createPhone('tunnel-phone');
  await p.h.waitForState(phone.deviceId, DeviceState.RUNNING);
});
after(async () => {
  await adb?.dispose();
  await p?.close();
  await rm(work, { recursive: true, force: true });
});

/** `cphone adb connect` running in the background; resolves with the address it printed. */
async function connect(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ child: ChildProcessWithoutNullStreams; address: string }> {
  const child = spawn(process.execPath, [BUNDLE as string, 'adb', 'connect', ...args, '-q'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...p.env, ...env },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c));
  child.stderr.on('data', (c: Buffer) => (err += c));
  const address = await waitFor(
    'the tunnel address',
    async () => ({ out, err, exit: child.exitCode }),
    (v) => /^127\.0\.0\.1:\d+\n/.test(v.out) || v.exit !== null,
    { timeoutMs: 20_000 },
  );
  if (child.exitCode !== null) throw new Error(`cphone adb connect exited ${child.exitCode}: ${address.err}`);
  return { child, address: out.trim() };
}

test('adb connect: shell, a 16 MiB push and an install through the tunnel; Ctrl-C closes it', async () => {
  const { child, address } = await connect(['tunnel-phone', '--agent-ca', agentCa]);
  try {
    assert.match(await adb.text(['connect', address]), /connected to/);
    await waitFor(
      'the phone online',
      () => adb.state(address),
      (s) => s === 'device',
      { timeoutMs: 20_000 },
    );
    assert.equal(
      (await adb.text(['-s', address, 'shell', 'getprop', 'ro.build.version.sdk'])).trim(),
      '34',
      'the Android of the phone image (redroid 14)',
    );

    const file = join(work, 'blob.bin');
    const blob = randomBytes(16 * 1024 * 1024);
    await writeFile(file, blob);
    await adb.text(['-s', address, 'push', file, '/sdcard/blob.bin'], { timeoutMs: 120_000 });
    const md5 = (await adb.text(['-s', address, 'shell', 'md5sum', '/sdcard/blob.bin'])).split(/\s+/)[0];
    assert.equal(md5, createHash('md5').update(blob).digest('hex'));

    const apk = new URL('../../host-agent/fixtures/test-app.apk', import.meta.url).pathname;
    assert.match(await adb.text(['-s', address, 'install', apk], { timeoutMs: 120_000 }), /Success/);
    assert.match(await adb.text(['-s', address, 'shell', 'pm', 'list', 'packages']), /package:\S+/);
  } finally {
    await adb.run(['disconnect', address]);
    child.kill('SIGINT');
  }
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, 'Ctrl-C closes the tunnel and exits cleanly');
  const port = Number(address.split(':')[1]);
  const free = await new Promise<boolean>((resolve) => {
    const probe = createServer()
      .once('error', () => resolve(false))
      .listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
  assert.ok(free, 'the local port is released');
});

test("another tenant's key cannot open a tunnel to the phone", async () => {
  const other = await p.cli([
    'tenants',
    'create',
    '--name',
    'someone-else',
    '--kind',
    'reseller',
    '-o',
    'json',
  ]);
  assert.equal(other.code, 0, other.stderr);
  const otherId = (JSON.parse(other.stdout) as { tenantId: string }).tenantId;
  const key = await p.cli([
    'api-keys',
    'create',
    '--tenant',
    otherId,
    '--name',
    'intruder',
    '--role',
    'tenant-admin',
    '-q',
  ]);
  assert.equal(key.code, 0, key.stderr);
  const secret = key.stdout.trim();
  const byName = await p.cli(['adb', 'connect', 'tunnel-phone'], { env: { CPHONE_API_KEY: secret } });
  assert.equal(byName.code, 4, byName.stderr);
  const id = (await p.h.devices.listDevices({ tenantId: p.h.tenantId })).devices[0]?.deviceId ?? '';
  const byId = await p.cli(['adb', 'connect', id], { env: { CPHONE_API_KEY: secret } });
  assert.equal(byId.code, 4, byId.stderr);
  assert.match(byId.stderr, /NOT_FOUND/);
});

test('devices shell on a terminal is interactive (through the tunnel) and passes the exit code', async () => {
  const home = await mkdtemp(join(tmpdir(), 'cphone-cli-adb-home-'));
  const adbPort = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
  const socket = `cphone-cli-shell-${process.pid}`;
  const tmux = (...args: string[]) =>
    new Promise<string>((resolve, reject) => {
      const c = spawn('tmux', ['-L', socket, ...args]);
      let out = '';
      c.stdout.on('data', (d: Buffer) => (out += d));
      c.on('exit', (code) =>
        code === 0 ? resolve(out) : reject(new Error(`tmux ${args[0]} exited ${code}`)),
      );
    });
  const env = {
    ...p.env,
    HOME: home,
    ANDROID_ADB_SERVER_PORT: String(adbPort),
    CPHONE_AGENT_CA_FILE: agentCa,
  };
  const line = Object.entries(env)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  try {
    await tmux(
      'new-session',
      '-d',
      '-x',
      '100',
      '-y',
      '20',
      `env ${line} ${process.execPath} ${BUNDLE} devices shell tunnel-phone; echo EXIT=$?; sleep 600`,
    );
    const screen = () => tmux('capture-pane', '-p');
    await waitFor('the phone prompt', screen, (s) => /[$#] *$/m.test(s), { timeoutMs: 30_000 });
    await tmux('send-keys', 'getprop ro.build.version.sdk', 'Enter');
    await waitFor('the answer', screen, (s) => /^34\s*$/m.test(s), { timeoutMs: 10_000 });
    await tmux('send-keys', 'exit 3', 'Enter');
    const done = await waitFor('the exit', screen, (s) => /EXIT=\d+/.test(s), { timeoutMs: 10_000 });
    assert.match(done, /EXIT=3/);
  } finally {
    await tmux('kill-server').catch(() => undefined);
    spawn('/usr/bin/adb', ['-P', String(adbPort), 'kill-server'], { env: { ...process.env, HOME: home } });
    await rm(home, { recursive: true, force: true });
  }
});
