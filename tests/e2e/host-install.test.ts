// deploy/host: the units checked offline by systemd-analyze (Debian's systemd, from
// scripts/setup-system.sh), and install.sh --dry-run, which says what it would do on this machine
// and must change nothing (this machine is no phone server and must not be reconfigured by a test).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { inotifyNeeded } from '@cphone/host-agent';

const root = new URL('../../', import.meta.url).pathname;
const host = join(root, 'deploy/host');
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cphone-host-install-'));
});
after(() => rm(dir, { recursive: true, force: true }));

function run(
  file: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
      },
    );
  });
}

/** The [Service]/[Unit] settings of a unit file, name -> values (a setting may repeat). */
function unitSettings(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1] as string, [...(out.get(m[1] as string) ?? []), m[2] as string]);
  }
  return out;
}

test('systemd-analyze verifies the agent unit and the binderfs mount, and rates the unit well hardened', async () => {
  // verify also checks that ExecStart exists: point it at the launcher in this checkout (the unit
  // names /usr/local/bin/cphone-agent, where install.sh copies it), every other line as shipped.
  const unit = (await readFile(join(host, 'cphone-agent.service'), 'utf8')).replace(
    'ExecStart=/usr/local/bin/cphone-agent',
    `ExecStart=${join(host, 'cphone-agent')}`,
  );
  assert.match(unit, new RegExp(`ExecStart=${join(host, 'cphone-agent')}`));
  await writeFile(join(dir, 'cphone-agent.service'), unit);
  await copyFile(join(host, 'dev-binderfs.mount'), join(dir, 'dev-binderfs.mount'));
  for (const name of ['cphone-agent.service', 'dev-binderfs.mount']) {
    const verify = await run('systemd-analyze', ['verify', join(dir, name)]);
    assert.equal(verify.code, 0, verify.stderr);
    assert.equal(verify.stderr, '', `systemd-analyze verify ${name} complained`);
  }
  const security = await run('systemd-analyze', [
    'security',
    '--offline=true',
    '--no-pager',
    join(host, 'cphone-agent.service'),
  ]);
  const level = /Overall exposure level for cphone-agent\.service: ([\d.]+)/.exec(security.stdout);
  assert.ok(level, security.stdout + security.stderr);
  assert.ok(Number(level[1]) <= 2.5, `exposure ${level[1]} (0 is best, 10 worst)`);
});

test('the unit runs as its own user with the hardening the agent tolerates, and outlasts its 15 s shutdown', async () => {
  const s = unitSettings(await readFile(join(host, 'cphone-agent.service'), 'utf8'));
  const one = (name: string) => s.get(name)?.join(' ');
  assert.equal(one('User'), 'cphone-agent');
  assert.equal(one('SupplementaryGroups'), 'docker');
  assert.equal(one('Restart'), 'on-failure');
  for (const [name, value] of [
    ['NoNewPrivileges', 'yes'],
    ['ProtectSystem', 'strict'],
    ['ReadWritePaths', '/var/lib/cphone-agent -/run/xtables.lock'],
    ['StateDirectory', 'cphone-agent'],
    ['ProtectHome', 'yes'],
    ['PrivateTmp', 'yes'],
    ['ProtectKernelTunables', 'yes'],
    ['ProtectKernelModules', 'yes'],
    ['CapabilityBoundingSet', 'CAP_NET_ADMIN'],
    ['AmbientCapabilities', 'CAP_NET_ADMIN'],
    ['SystemCallFilter', '@system-service'],
    ['LimitNOFILE', '65536'],
  ] as const) {
    assert.equal(one(name), value, name);
  }
  assert.deepEqual(one('RestrictAddressFamilies')?.split(' ').sort(), [
    'AF_INET',
    'AF_INET6',
    'AF_NETLINK',
    'AF_UNIX',
  ]);
  // The agent's own deadline, read from its source: systemd must wait longer before it kills.
  const main = await readFile(join(root, 'host-agent/src/main.ts'), 'utf8');
  const deadline = /process\.exit\(1\);\n\s*\}, ([\d_]+)\);/.exec(main);
  assert.ok(deadline, 'the shutdown deadline in host-agent/src/main.ts');
  const agentMs = Number(deadline[1]?.replaceAll('_', ''));
  assert.equal(agentMs, 15_000);
  assert.ok(Number(one('TimeoutStopSec')) * 1000 > agentMs);
});

async function machineState(): Promise<string> {
  const paths = [
    '/etc/sysctl.d/60-cphone.conf',
    '/etc/modprobe.d/cphone.conf',
    '/etc/modules-load.d/cphone.conf',
    '/etc/systemd/system/cphone-agent.service',
    '/etc/systemd/system/dev-binderfs.mount',
    '/usr/local/bin/cphone-agent',
    '/etc/cphone/agent.env',
    '/proc/sys/fs/inotify/max_user_instances',
  ];
  const files = await Promise.all(paths.map((p) => readFile(p, 'utf8').catch(() => '(absent)')));
  const user = await run('id', ['cphone-agent']);
  return JSON.stringify({ files, user: user.stdout });
}

test('install.sh --dry-run prints the plan for this machine, sized from the settings file, and changes nothing', async () => {
  const envFile = join(dir, 'agent.env');
  await writeFile(envFile, 'CPHONE_MAX_DEVICES=100\nCPHONE_RTC_PORT="41000"\nCPHONE_SFU_WORKERS=4\n');
  const before = await machineState();
  const r = await run('bash', [join(host, 'install.sh'), '--dry-run', '--env-file', envFile]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await machineState(), before, 'a dry run changed the machine');

  const need = inotifyNeeded(100);
  const current = Number((await readFile('/proc/sys/fs/inotify/max_user_instances', 'utf8')).trim());
  const sysctl = /would: write \/etc\/sysctl\.d\/60-cphone\.conf[^\n]*\n((?: {4}.*\n)+)/.exec(r.stdout);
  // Already in place (a machine set up by install.sh before): then it says ok instead.
  if (sysctl === null) assert.match(r.stderr, /ok: \/etc\/sysctl\.d\/60-cphone\.conf/);
  else {
    const conf = sysctl[1] as string;
    assert.match(
      conf,
      new RegExp(`fs\\.inotify\\.max_user_instances = ${Math.max(current, need.instances)}\\n`),
    );
    assert.match(conf, /fs\.inotify\.max_user_watches = \d+\n/);
    const watches = Number(/max_user_watches = (\d+)/.exec(conf)?.[1]);
    assert.ok(watches >= need.watches, `${watches} watches for 100 phones`);
    assert.match(conf, /net\.ipv4\.ip_local_reserved_ports = 41000-41003\n/);
    for (const key of [
      'kernel.pid_max',
      'vm.max_map_count',
      'fs.file-max',
      'net.core.somaxconn',
      'net.ipv4.ip_forward',
    ]) {
      assert.ok(conf.includes(`${key} = `), key);
    }
    assert.match(r.stdout, /would: apply \/etc\/sysctl\.d\/60-cphone\.conf \(\$ sysctl -q -p/);
  }
  assert.match(r.stdout, /options binder_linux devices=binder,hwbinder,vndbinder/);
  assert.match(
    r.stdout,
    /would: write \/etc\/systemd\/system\/cphone-agent\.service|ok: \/etc\/systemd\/system\/cphone-agent\.service/,
  );
  if (before.includes('"user":""')) {
    assert.match(
      r.stdout,
      /would: create the cphone-agent user and group \(\$ useradd --system --user-group .* --groups docker cphone-agent\)/,
    );
  }
  assert.match(r.stdout, /docker\.io|ok: packages/);
  // This kernel has no binder: the script says so and where to look.
  if (!/\sbinder$/m.test(await readFile('/proc/filesystems', 'utf8'))) {
    assert.match(r.stderr, /has no binder: .* See `cphone-agent doctor`/);
  }
  assert.match(r.stdout, /^dry run: nothing was changed$/m);
});

test('install.sh --runtime podman gives podman.socket the docker group and the agent its socket; bad arguments are named', async () => {
  const r = await run('bash', [join(host, 'install.sh'), '--dry-run', '--runtime', 'podman']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /would: write \/etc\/systemd\/system\/podman\.socket\.d\/cphone\.conf[^\n]*\n(?: {4}.*\n)*? {4}SocketGroup=docker\n/,
  );
  assert.match(r.stdout, /would: systemctl enable --now podman\.socket/);
  assert.match(r.stdout, /CPHONE_DOCKER_SOCKET=\/run\/podman\/podman\.sock/);
  const bad = await run('bash', [join(host, 'install.sh'), '--dry-run', '--runtime', 'lxc']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--runtime must be docker or podman, not 'lxc'/);
});

test('the cphone-agent launcher runs the doctor from any directory', async () => {
  const launcher = join(dir, 'cphone-agent');
  await copyFile(join(host, 'cphone-agent'), launcher);
  await chmod(launcher, 0o755);
  const r = await run(launcher, ['doctor', '--help'], { CPHONE_HOME: root });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^usage: cphone-agent doctor \[--json\]/);
  const missing = await run(launcher, [], {
    CPHONE_HOME: root,
    CPHONE_AGENT_MAIN: 'host-agent/dist/none.js',
  });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /CPHONE_AGENT_MAIN=host-agent\/dist\/none\.js: no such file/);
});
