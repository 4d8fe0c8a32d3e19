import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, parseEnvFile } from '../config.js';
import { chronyOffsetMs, firewallCheck, portsCheck, timeSyncCheck, timesyncOffsetMs } from './host-checks.js';
import { type DoctorProbes, doctorMain, inotifyNeeded } from './index.js';
import { binderCheck, cgroupCheck, inotifyCheck, kernelCheck, kernelSettingsCheck } from './kernel-checks.js';
import { controlPlaneCheck, imageCheck, runtimeCheck } from './remote-checks.js';
import { readSettings } from './settings.js';
import type { CommandOutput, DoctorContext, TlsOutcome } from './types.js';

const CGROUP2 = 0x63677270;
const TMPFS = 0x01021994;
const GiB = 1024 ** 3;

/** A host where every check passes; tests change one thing each. */
function healthyFiles(): Record<string, string> {
  return {
    '/proc/filesystems': 'nodev\tsysfs\nnodev\tcgroup2\nnodev\tbinder\n',
    '/proc/misc': '229 fuse\n',
    '/proc/sys/fs/inotify/max_user_instances': '8192\n',
    '/proc/sys/fs/inotify/max_user_watches': '1048576\n',
    '/proc/sys/kernel/pid_max': '4194304\n',
    '/proc/sys/vm/max_map_count': '262144\n',
    '/proc/sys/net/core/wmem_max': '4194304\n',
    '/proc/sys/net/core/rmem_max': '4194304\n',
    '/proc/sys/net/ipv4/ip_local_port_range': '32768\t60999\n',
    '/proc/sys/net/ipv4/ip_local_reserved_ports': '40000-40003\n',
    '/etc/cphone/ca.pem': 'CA PEM',
    '/dev/null': '',
    '/opt/cphone/mediasoup-worker': 'ELF',
  };
}

interface Fake {
  files: Record<string, string>;
  paths: Set<string>;
  cgroupType: number;
  commands: Record<string, CommandOutput>;
  engine: Error | undefined;
  images: Set<string>;
  busy: Set<string>;
  agentUp: boolean;
  tls: TlsOutcome;
  tlsAsked: Array<Parameters<DoctorProbes['tlsHandshake']>[0]>;
}

function fake(change: (f: Fake) => void = () => {}): { probes: DoctorProbes; f: Fake } {
  const f: Fake = {
    files: healthyFiles(),
    paths: new Set(['/var/lib/cphone-agent', '/var/lib', '/var', '/']),
    cgroupType: CGROUP2,
    commands: {
      iptables: { code: 0, stdout: '-P FORWARD DROP\n-A FORWARD -j CPHONE-ISOLATION\n', stderr: '' },
      chronyc: {
        code: 0,
        stdout: 'System time     : 0.000012000 seconds slow of NTP time\nLeap status     : Normal\n',
        stderr: '',
      },
    },
    engine: undefined,
    images: new Set(['redroid/redroid:14.0.0-latest']),
    busy: new Set(),
    agentUp: false,
    tls: { ok: true, subject: 'CN=gw', validTo: new Date('2027-06-01T00:00:00Z'), alpn: 'h2' },
    tlsAsked: [],
  };
  change(f);
  const probes: DoctorProbes = {
    kernelRelease: () => '6.1.0-18-arm64',
    readFile: async (path) => f.files[path],
    pathExists: async (path) => path in f.files || f.paths.has(path),
    statfs: async (path) =>
      path === '/sys/fs/cgroup'
        ? { type: f.cgroupType, freeBytes: 0, totalBytes: 0 }
        : { type: 0xef53, freeBytes: 200 * GiB, totalBytes: 400 * GiB },
    command: async (file) => f.commands[file],
    engineVersion: async () => {
      if (f.engine) throw f.engine;
      return { name: 'Podman Engine', version: '4.3.1', apiVersion: '1.41' };
    },
    engineHasImage: async (_socket, ref) => f.images.has(ref),
    portFree: async (_address, port, protocol) =>
      f.busy.has(`${protocol}/${port}`) ? 'EADDRINUSE' : undefined,
    agentAnswers: async () => f.agentUp,
    tlsHandshake: async (options) => {
      f.tlsAsked.push(options);
      return f.tls;
    },
  };
  return { probes, f };
}

const ENV = {
  CPHONE_HOST_ID: 'h-1',
  CPHONE_HOST_CREDENTIAL: 'secret',
  CPHONE_CONTROL_PLANE: 'gw.example.net:8443',
  CPHONE_CA_FILE: '/dev/null',
  CPHONE_SFU_WORKERS: '4',
  MEDIASOUP_WORKER_BIN: '/opt/cphone/mediasoup-worker',
};

function context(probes: DoctorProbes, env: Record<string, string> = {}): DoctorContext {
  const settings = readSettings({ ...ENV, ...env }, '/etc/cphone/agent.env');
  // The CA is read through the probes; /dev/null only passes config.ts's readability check.
  const config = { ...settings.config, caFile: '/etc/cphone/ca.pem' };
  return {
    settings: { ...settings, config },
    probes,
    images: ['redroid/redroid:14.0.0-latest'],
    workerPath: '/nonexistent',
    now: new Date('2026-12-01T00:00:00Z'),
  };
}

test('doctorMain on a healthy host: every check ok, exit 0, JSON with one entry per check', async () => {
  const out: string[] = [];
  const code = await doctorMain(
    ['--json', '--env-file', '/dev/null', '--image', 'redroid/redroid:14.0.0-latest'],
    {
      stdout: (t) => out.push(t),
      stderr: (t) => out.push(t),
      probes: fake().probes,
      env: { ...ENV, CPHONE_CA_FILE: '/dev/null', CPHONE_AGENT_DATA_DIR: '/var/lib/cphone-agent' },
    },
  );
  const report = JSON.parse(out.join('')) as { ok: boolean; checks: Array<{ id: string; status: string }> };
  assert.deepEqual(
    report.checks.filter((c) => c.status !== 'ok'),
    [],
  );
  assert.equal(code, 0);
  assert.equal(report.ok, true);
  assert.equal(report.checks.length, 15);
});

test('doctorMain: a failing check makes exit code 1 and a fix line; a bad argument exits 2', async () => {
  const out: string[] = [];
  const io = {
    stdout: (t: string) => out.push(t),
    stderr: (t: string) => out.push(t),
    probes: fake((f) => {
      f.cgroupType = TMPFS;
    }).probes,
    env: { ...ENV, CPHONE_AGENT_DATA_DIR: '/var/lib/cphone-agent' },
  };
  assert.equal(await doctorMain(['--env-file', '/dev/null'], io), 1);
  const text = out.join('');
  assert.match(text, /^FAIL {2}cgroup-v2 +cgroup v1/m);
  assert.match(text, /fix: boot with the unified hierarchy: add systemd\.unified_cgroup_hierarchy=1/);
  assert.match(text, /1 failed, 1 warnings, 13 ok/);
  out.length = 0;
  assert.equal(await doctorMain(['--frobnicate'], io), 2);
  assert.match(out.join(''), /invalid argument="--frobnicate": is not a doctor option/);
  assert.equal(await doctorMain(['--env-file', '/nonexistent/agent.env'], io), 2);
});

test('settings: every bad variable is reported and the rest still load', () => {
  const s = readSettings({ CPHONE_RTC_PORT: 'x', CPHONE_MAX_DEVICES: '64' }, undefined);
  assert.deepEqual(
    s.errors.map((e) => e.variable),
    ['CPHONE_HOST_ID', 'CPHONE_HOST_CREDENTIAL', 'CPHONE_RTC_PORT'],
  );
  assert.equal(s.config.maxDevices, 64);
  assert.equal(s.config.stream.rtcPort, 40_000);
});

test('parseEnvFile reads systemd EnvironmentFile syntax and names a bad line', () => {
  assert.deepEqual(parseEnvFile('# c\n; c\n\nA=1\nB="two words"\nexport C=\'3\'\nD=\n', 'f'), {
    A: '1',
    B: 'two words',
    C: '3',
    D: '',
  });
  assert.throws(
    () => parseEnvFile('A=1\nnot a setting\n', '/etc/cphone/agent.env'),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.variable, '/etc/cphone/agent.env:2');
      return true;
    },
  );
});

/** A host whose /proc/filesystems has no binderfs; `modinfo binder_linux` exits `modinfo` (absent: not run). */
function withoutBinderfs(modinfo?: number, loaded = false): DoctorContext {
  return context(
    fake((f) => {
      f.files['/proc/filesystems'] = 'nodev\tsysfs\n';
      if (modinfo !== undefined) f.commands.modinfo = { code: modinfo, stdout: '', stderr: '' };
      if (loaded) f.paths.add('/sys/module/binder_linux');
    }).probes,
  );
}

test('binder: binderfs ok; a loadable module says modprobe; no binder at all names the kernel options', async () => {
  assert.equal((await binderCheck(context(fake().probes))).status, 'ok');
  const loadable = await binderCheck(withoutBinderfs(0));
  assert.equal(loadable.status, 'fail');
  assert.match(loadable.fix ?? '', /^modprobe binder_linux devices=binder,hwbinder,vndbinder/);
  const none = await binderCheck(withoutBinderfs(1));
  assert.equal(none.status, 'fail');
  assert.match(none.fix ?? '', /CONFIG_ANDROID_BINDER_IPC and CONFIG_ANDROID_BINDERFS/);
  const noFs = await binderCheck(withoutBinderfs(undefined, true));
  assert.equal(noFs.status, 'fail');
  assert.match(noFs.fix ?? '', /CONFIG_ANDROID_BINDERFS/);
});

test('kernel: 5.x ok, 4.19 warns (no binderfs), 4.9 fails', async () => {
  const at = (release: string) => kernelCheck(context({ ...fake().probes, kernelRelease: () => release }));
  assert.equal((await at('6.1.0-18-arm64')).status, 'ok');
  assert.equal((await at('4.19.0-21-arm64')).status, 'warn');
  assert.equal((await at('4.9.0-8-arm64')).status, 'fail');
});

test('cgroup: hybrid hierarchy fails with the kernel command line fix', async () => {
  const r = await cgroupCheck(
    context(
      fake((f) => {
        f.cgroupType = TMPFS;
        f.paths.add('/sys/fs/cgroup/unified');
      }).probes,
    ),
  );
  assert.equal(r.status, 'fail');
  assert.match(r.detail, /hybrid/);
  assert.match(r.fix ?? '', /systemd\.unified_cgroup_hierarchy=1/);
});

test('inotify: sized from CPHONE_MAX_DEVICES; short limits name the values to write', async () => {
  assert.deepEqual(inotifyNeeded(32), { instances: 4608, watches: 589_824 });
  const { probes } = fake((f) => {
    f.files['/proc/sys/fs/inotify/max_user_instances'] = '128\n';
  });
  const r = await inotifyCheck(context(probes, { CPHONE_MAX_DEVICES: '100' }));
  assert.equal(r.status, 'fail');
  assert.match(r.detail, /100 phones \(CPHONE_MAX_DEVICES\) need 13312 and 1703936/);
  assert.match(
    r.fix ?? '',
    /fs\.inotify\.max_user_instances = 13312 and fs\.inotify\.max_user_watches = 1703936/,
  );
  assert.equal((await inotifyCheck(context(probes, { CPHONE_MAX_DEVICES: '0' }))).status, 'fail');
  assert.equal((await inotifyCheck(context(fake().probes))).status, 'ok');
});

test('kernel settings: WebRTC ports in the unreserved ephemeral range warn with the range to reserve', async () => {
  const { probes } = fake((f) => {
    f.files['/proc/sys/net/ipv4/ip_local_reserved_ports'] = '\n';
  });
  const r = await kernelSettingsCheck(context(probes));
  assert.equal(r.status, 'warn');
  assert.match(r.fix ?? '', /net\.ipv4\.ip_local_reserved_ports = 40000-40003/);
  assert.equal((await kernelSettingsCheck(context(fake().probes))).status, 'ok');
});

test('time sync: chrony, timedatectl offsets, and no sync at all', async () => {
  assert.equal(chronyOffsetMs('System time     : 0.250000000 seconds fast of NTP time'), 250);
  assert.equal(timesyncOffsetMs('       Offset: -1.5ms\n'), -1.5);
  assert.equal(timesyncOffsetMs('       Offset: +250us\n'), 0.25);
  assert.equal((await timeSyncCheck(context(fake().probes))).status, 'ok');
  const far = await timeSyncCheck(
    context(
      fake((f) => {
        f.commands.chronyc = {
          code: 0,
          stdout: 'System time : 0.9 seconds fast of NTP time\nLeap status : Normal\n',
          stderr: '',
        };
      }).probes,
    ),
  );
  assert.equal(far.status, 'fail');
  assert.match(far.detail, /offset 900\.00 ms/);
  const timesyncd = await timeSyncCheck(
    context(
      fake((f) => {
        delete f.commands.chronyc;
        f.commands.timedatectl = { code: 0, stdout: 'no\n', stderr: '' };
      }).probes,
    ),
  );
  assert.equal(timesyncd.status, 'fail');
  assert.match(timesyncd.detail, /timedatectl: the clock is not synchronised/);
  const none = await timeSyncCheck(context(fake((f) => delete f.commands.chronyc).probes));
  assert.equal(none.status, 'fail');
  assert.match(none.fix ?? '', /apt-get install chrony/);
});

test('ports: a taken WebRTC port names the setting; a running agent holds its own ports', async () => {
  const { probes, f } = fake((fk) => {
    fk.busy.add('udp/40002');
  });
  const r = await portsCheck(context(probes));
  assert.equal(r.status, 'fail');
  assert.match(r.detail, /udp 0\.0\.0\.0:40002 \(WebRTC of sfu worker 2\): EADDRINUSE/);
  assert.match(r.fix ?? '', /CPHONE_RTC_PORT/);
  f.agentUp = true;
  assert.equal((await portsCheck(context(probes))).status, 'ok');
});

test('runtime and image: permission denied names the group; a missing image says how to pull it', async () => {
  const denied = Object.assign(new Error('connect EACCES /var/run/docker.sock'), { code: 'EACCES' });
  const r = await runtimeCheck(context(fake((f) => (f.engine = denied)).probes));
  assert.equal(r.status, 'fail');
  assert.match(r.fix ?? '', /usermod -aG docker cphone-agent/);
  const ctx = {
    ...context(fake().probes),
    images: ['redroid/redroid:14.0.0-latest', 'redroid/redroid:12.0.0-latest'],
  };
  const image = await imageCheck(ctx);
  assert.equal(image.status, 'fail');
  assert.match(image.detail, /not in the engine: redroid\/redroid:12\.0\.0-latest/);
  assert.match(image.fix ?? '', /^podman pull redroid\/redroid:12\.0\.0-latest/);
  assert.equal((await imageCheck({ ...ctx, images: [] })).status, 'warn');
});

test('control plane: verified with the CA file and the name; wrong CA, name mismatch, HTTP/1 and expiry each say so', async () => {
  const { probes, f } = fake();
  const ok = await controlPlaneCheck(context(probes, { CPHONE_TLS_SERVER_NAME: 'gw.internal' }));
  assert.equal(ok.status, 'ok');
  assert.match(
    ok.detail,
    /verified with CPHONE_CA_FILE=\/etc\/cphone\/ca\.pem \(CN=gw, expires in 182 days\)/,
  );
  assert.deepEqual(f.tlsAsked[0], {
    host: 'gw.example.net',
    port: 8443,
    ca: 'CA PEM',
    servername: 'gw.internal',
  });
  const outcome = (tls: TlsOutcome) =>
    controlPlaneCheck(
      context(
        fake((fk) => {
          fk.tls = tls;
        }).probes,
      ),
    );
  const wrong = await outcome({
    ok: false,
    code: 'SELF_SIGNED_CERT_IN_CHAIN',
    message: 'self-signed certificate in certificate chain',
  });
  assert.equal(wrong.status, 'fail');
  assert.match(wrong.detail, /does not chain to CPHONE_CA_FILE=\/etc\/cphone\/ca\.pem .*wrong CA/);
  const name = await outcome({
    ok: false,
    code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    message: "Hostname/IP does not match certificate's altnames",
  });
  assert.match(name.fix ?? '', /CPHONE_TLS_SERVER_NAME/);
  const http1 = await outcome({ ok: true, subject: 'CN=api', validTo: new Date('2027-06-01'), alpn: false });
  assert.equal(http1.status, 'fail');
  assert.match(http1.detail, /does not speak HTTP\/2/);
  const soon = await outcome({
    ok: true,
    subject: 'CN=gw',
    validTo: new Date('2026-12-05T00:00:00Z'),
    alpn: 'h2',
  });
  assert.equal(soon.status, 'warn');
  const refused = await outcome({ ok: false, code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' });
  assert.match(refused.fix ?? '', /check CPHONE_CONTROL_PLANE \(gw\.example\.net:8443\)/);
});

test('firewall: iptables missing, refused, the unit without CAP_NET_ADMIN, and isolation off each say what to do', async () => {
  const ok = await firewallCheck(context(fake().probes));
  assert.equal(ok.status, 'ok');
  assert.match(ok.detail, /chains are in place/);

  const missing = await firewallCheck(context(fake((f) => delete f.commands.iptables).probes));
  assert.equal(missing.status, 'fail');
  assert.equal(missing.fix, 'apt-get install -y iptables');

  const refused = await firewallCheck(
    context(
      fake((f) => {
        f.commands.iptables = { code: 4, stdout: '', stderr: 'Permission denied (you must be root)' };
      }).probes,
    ),
  );
  assert.equal(refused.status, 'fail');
  assert.match(refused.detail, /exited 4: Permission denied/);
  assert.match(refused.fix ?? '', /sudo cphone-agent doctor/);

  const oldUnit = await firewallCheck(
    context(
      fake((f) => {
        f.files['/etc/systemd/system/cphone-agent.service'] =
          '[Service]\nCapabilityBoundingSet=\nAmbientCapabilities=\n';
      }).probes,
    ),
  );
  assert.equal(oldUnit.status, 'fail');
  assert.match(oldUnit.fix ?? '', /AmbientCapabilities= to CAP_NET_ADMIN/);

  const off = await firewallCheck(context(fake().probes, { CPHONE_NETWORK_ISOLATION: 'off' }));
  assert.equal(off.status, 'warn');
  assert.match(off.fix ?? '', /remove CPHONE_NETWORK_ISOLATION=off/);
});
