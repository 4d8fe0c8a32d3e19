// `cphone-agent doctor` run for real on this machine: against podman's Docker API (from
// scripts/setup-podman.sh) and a real control plane's agent gateway over TLS. Checks whose outcome
// depends on this machine's kernel (binder, cgroups, inotify) are asserted against what the test
// itself reads from /proc and /sys: where they fail, the fix must be the right one.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtemp, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startTestControlPlane, type TestControlPlane } from '@cphone/control-plane/testing';
import { connectEngine } from '@cphone/host-agent/testing';
import { createCertificateAuthority } from '@cphone/proto';

const main = new URL('../../host-agent/src/main.ts', import.meta.url).pathname;
const PHONES = 32;

interface Report {
  ok: boolean;
  checks: Array<{ id: string; status: 'ok' | 'warn' | 'fail'; detail: string; fix?: string }>;
}

let plane: TestControlPlane;
let dir: string;
let image: string;
let socketPath: string;

let holder: Server | undefined;
// The three runs, started together (each is a process that spends most of its time starting up).
let right: Promise<Run>;
let wrong: Promise<Run>;
let unset: Promise<Run>;
let wrongSettings: Record<string, string>;
let unsetSettings: Record<string, string>;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cphone-doctor-'));
  ({ image, socketPath } = await connectEngine());
  plane = await startTestControlPlane();
  const caFile = join(plane.dataDir, 'tls', 'ca.pem');
  right = doctor(await baseSettings(caFile));

  // A CA that did not sign the gateway's certificate, and the stream port held by someone else.
  const other = await createCertificateAuthority('some other CA');
  const wrongCa = join(dir, 'wrong-ca.pem');
  await writeFile(wrongCa, other.cert);
  wrongSettings = await baseSettings(wrongCa);
  const server = createServer();
  holder = server;
  await new Promise<void>((resolve) =>
    server.listen(Number(wrongSettings.CPHONE_STREAM_PORT), '127.0.0.1', resolve),
  );
  wrong = doctor(wrongSettings);

  // No host id, and nothing listening where the gateway should be.
  unsetSettings = await baseSettings(caFile);
  delete unsetSettings.CPHONE_HOST_ID;
  unsetSettings.CPHONE_CONTROL_PLANE = `127.0.0.1:${await freePort()}`;
  unset = doctor(unsetSettings);
  await Promise.allSettled([right, wrong, unset]);
});
after(async () => {
  holder?.close();
  await plane?.close();
  await rm(dir, { recursive: true, force: true });
});

const handedOut = new Set<number>();

/** A port free on 127.0.0.1 for TCP and UDP at the moment of asking, never the same one twice. */
async function freePort(): Promise<number> {
  for (;;) {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    await new Promise((resolve) => server.close(resolve));
    const udp = createSocket('udp4');
    const free = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, '127.0.0.1', () => resolve(true));
    });
    udp.close();
    if (free && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

interface Run {
  code: number;
  report: Report;
}

async function doctor(settings: Record<string, string>): Promise<Run> {
  const envFile = join(dir, `agent-${Math.random().toString(36).slice(2)}.env`);
  await writeFile(
    envFile,
    Object.entries(settings)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(''),
  );
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', main, 'doctor', '--json', '--env-file', envFile, '--image', image],
      { env: { PATH: process.env.PATH ?? '' }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        try {
          resolve({ code, report: JSON.parse(stdout) as Report });
        } catch {
          reject(new Error(`doctor exited ${code} without JSON: ${stdout}\n${stderr}`));
        }
      },
    );
  });
}

async function baseSettings(caFile: string): Promise<Record<string, string>> {
  return {
    CPHONE_HOST_ID: 'h-doctor',
    CPHONE_HOST_CREDENTIAL: 'not-checked-by-the-doctor',
    CPHONE_CONTROL_PLANE: `127.0.0.1:${plane.plane.grpcPort}`,
    CPHONE_CA_FILE: caFile,
    CPHONE_RUNTIME: 'docker',
    CPHONE_DOCKER_SOCKET: socketPath,
    CPHONE_AGENT_DATA_DIR: join(dir, 'data'),
    CPHONE_MAX_DEVICES: String(PHONES),
    CPHONE_AGENT_HTTP_PORT: String(await freePort()),
    CPHONE_STREAM_BIND: '127.0.0.1',
    CPHONE_STREAM_PORT: String(await freePort()),
    CPHONE_RTC_LISTEN_IP: '127.0.0.1',
    CPHONE_RTC_PORT: String(await freePort()),
    CPHONE_SFU_WORKERS: '1',
  };
}

function check(report: Report, id: string) {
  const found = report.checks.find((c) => c.id === id);
  assert.ok(found, `no ${id} check in ${JSON.stringify(report)}`);
  return found;
}

async function readSysctl(name: string): Promise<number> {
  return Number((await readFile(`/proc/sys/${name.replaceAll('.', '/')}`, 'utf8')).trim());
}

test('the real doctor on this machine: what works here passes, what this kernel lacks fails with its fix', async () => {
  const { code, report } = await right;

  // The data dir does not exist yet: the doctor measures the nearest parent, the temp dir.
  const fs = await statfs(dir);
  const freeGiB = (fs.bavail * fs.bsize) / 1024 ** 3;
  assert.equal(check(report, 'disk').status, freeGiB < 1 ? 'fail' : freeGiB < 5 ? 'warn' : 'ok');
  for (const id of ['settings', 'kernel', 'shared-memory', 'ports']) {
    assert.equal(check(report, id).status, 'ok', JSON.stringify(check(report, id)));
  }
  const runtime = check(report, 'runtime');
  assert.equal(runtime.status, 'ok', JSON.stringify(runtime));
  assert.match(runtime.detail, /^Podman Engine \S+ \(API \S+\) answers on /);
  assert.deepEqual(check(report, 'image'), { id: 'image', status: 'ok', detail: `present: ${image}` });
  const cp = check(report, 'control-plane');
  assert.equal(cp.status, 'ok', JSON.stringify(cp));
  assert.match(
    cp.detail,
    /verified with CPHONE_CA_FILE=.*\(CN=cphone control plane, issued by CN=cphone agent CA/,
  );

  // Binder: this machine's kernel has none (no binderfs, no modules at all).
  const hasBinderfs = /\sbinder$/m.test(await readFile('/proc/filesystems', 'utf8'));
  const binder = check(report, 'binder');
  if (hasBinderfs) assert.equal(binder.status, 'ok');
  else {
    assert.equal(binder.status, 'fail');
    assert.match(
      binder.fix ?? '',
      /CONFIG_ANDROID_BINDER|modprobe binder_linux devices=binder,hwbinder,vndbinder/,
    );
  }
  // cgroups: hybrid here.
  const v2 = (await statfs('/sys/fs/cgroup')).type === 0x63677270;
  const cgroup = check(report, 'cgroup-v2');
  assert.equal(cgroup.status, v2 ? 'ok' : 'fail');
  if (!v2) assert.match(cgroup.fix ?? '', /systemd\.unified_cgroup_hierarchy=1/);
  // inotify: Debian's default 128 instances is far below what 32 phones need.
  const enough =
    (await readSysctl('fs.inotify.max_user_instances')) >= 512 + 128 * PHONES &&
    (await readSysctl('fs.inotify.max_user_watches')) >= 65_536 + 16_384 * PHONES;
  const inotify = check(report, 'inotify');
  assert.equal(inotify.status, enough ? 'ok' : 'fail');
  if (!enough) assert.match(inotify.fix ?? '', /\/etc\/sysctl\.d\/60-cphone\.conf and run sysctl --system/);
  // The firewall: the test runs as root on a machine with iptables (setup-system.sh installs it).
  assert.equal(check(report, 'firewall').status, 'ok');
  // Time sync: whatever this machine has, a failure says how to get it.
  const time = check(report, 'time-sync');
  if (time.status === 'fail') assert.match(time.fix ?? '', /chrony/);

  assert.equal(
    report.ok,
    report.checks.every((c) => c.status !== 'fail'),
  );
  assert.equal(code, report.ok ? 0 : 1);
  assert.equal(report.checks.length, 15);
});

test('a wrong CA and a taken stream port fail, each saying so', async () => {
  const { code, report } = await wrong;
  assert.equal(code, 1);
  assert.equal(report.ok, false);
  const cp = check(report, 'control-plane');
  assert.equal(cp.status, 'fail');
  assert.match(
    cp.detail,
    /the gateway's certificate does not chain to CPHONE_CA_FILE=.*wrong-ca\.pem \(\w+\): wrong CA/,
  );
  assert.match(cp.fix ?? '', /CPHONE_TLS_CA file, or <its data dir>\/tls\/ca\.pem/);
  const ports = check(report, 'ports');
  assert.equal(ports.status, 'fail');
  assert.match(
    ports.detail,
    new RegExp(`tcp 127\\.0\\.0\\.1:${wrongSettings.CPHONE_STREAM_PORT} \\(stream signaling\\): EADDRINUSE`),
  );
  assert.match(ports.fix ?? '', /CPHONE_STREAM_PORT/);
});

test('settings missing from the file fail the settings check by name; an unreachable gateway says where it dialed', async () => {
  const { code, report } = await unset;
  assert.equal(code, 1);
  const s = check(report, 'settings');
  assert.equal(s.status, 'fail');
  assert.match(s.detail, /invalid CPHONE_HOST_ID="": is required/);
  const cp = check(report, 'control-plane');
  assert.equal(cp.status, 'fail');
  assert.match(cp.detail, /ECONNREFUSED/);
  assert.match(
    cp.fix ?? '',
    new RegExp(`check CPHONE_CONTROL_PLANE \\(${unsetSettings.CPHONE_CONTROL_PLANE}\\)`),
  );
});
