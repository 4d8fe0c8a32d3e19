// Proof of phone network isolation with real containers, inside network namespaces this test makes:
//
//   netns "host" (cphone-iso-*): podman's API service (so its bridges and netavark's rules live
//     here), the agent's firewall (iptables run in this namespace), a listener on the agent's port,
//     and a veth to
//   netns "upstream" (cphone-isu-*): the test servers on 203.0.113.10 ("internet"),
//     169.254.169.254 ("metadata") and 10.77.0.10 ("private"). It has no other link, so no
//     packet can leave the machine.
//
// Two phones of two tenants (stand-in image) each try the other's adbd, the agent's port, the
// metadata and the private server (all refused) and reach the internet server; the agent still
// reaches their adbd; each phone's egress counter counts its bytes to the internet and nothing of
// the refused attempts.
import { strict as assert } from 'node:assert';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Docker from 'dockerode';
import pino from 'pino';
import { contractSpec } from '../runtime/contract.js';
import { DockerRuntime } from '../runtime/docker-runtime.js';
import { connectEngine, execIn, removeScope } from '../runtime/test-engine.js';
import type { RuntimeDevice } from '../runtime/types.js';
import { inNetns } from './command.js';
import { EGRESS_CHAIN, FORWARD_CHAIN, PhoneFirewall } from './firewall.js';
import { startNetworkIsolation } from './index.js';
import type { NetworkIsolation } from './isolation.js';

const INTERNET = '203.0.113.10';
const METADATA = '169.254.169.254';
const PRIVATE = '10.77.0.10';
const HOST_UPLINK = '198.51.100.1';
const UPSTREAM_UPLINK = '198.51.100.2';
const SERVER_PORT = 80;
const AGENT_PORT = 9102;

const sh = (argv: string[]) => execFileSync(argv[0] as string, argv.slice(1), { stdio: 'pipe' }).toString();

/** A TCP server that prints one JSON line per accepted connection and answers `ok <bytes read>`. */
const SERVER = `
import net from 'node:net';
const port = Number(process.argv[2]);
net.createServer((s) => {
  console.log(JSON.stringify({ event: 'connect', local: s.localAddress, remote: s.remoteAddress, port }));
  let n = 0;
  s.on('data', (d) => { n += d.length; });
  s.on('end', () => s.end('ok ' + n));
  s.on('error', () => {});
}).listen(port, '0.0.0.0', () => console.log(JSON.stringify({ event: 'listening', port })));
`;

/** Connects to each target at once, sends `bytes` bytes, half-closes and reads the answer. */
const PROBE = `
const net = require('node:net');
const targets = JSON.parse(process.argv[1]);
Promise.all(targets.map((t) => new Promise((resolve) => {
  const s = net.connect({ host: t.host, port: t.port });
  let reply = '';
  let settled = false;
  const done = (r) => { if (!settled) { settled = true; clearTimeout(timer); s.destroy(); resolve({ ...t, ...r }); } };
  const timer = setTimeout(() => done({ ok: false, error: 'timeout' }), 10000);
  s.on('connect', () => s.end(Buffer.alloc(t.bytes || 1, 120)));
  s.on('data', (d) => { reply += d; });
  s.on('end', () => done({ ok: true, reply }));
  s.on('error', (e) => done({ ok: false, error: e.code }));
}))).then((r) => console.log(JSON.stringify(r)));
`;

interface Target {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly bytes?: number;
}
interface ProbeResult extends Target {
  readonly ok: boolean;
  readonly reply?: string;
  readonly error?: string;
}

async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A long-running process whose stdout lines are collected. */
function background(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): { child: ChildProcess; lines: string[] } {
  const child = spawn(argv[0] as string, argv.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
    detached: true,
  });
  const lines: string[] = [];
  let buffer = '';
  child.stdout?.on('data', (d: Buffer) => {
    buffer += d.toString();
    const parts = buffer.split('\n');
    buffer = parts.pop() ?? '';
    lines.push(...parts.filter((l) => l !== ''));
  });
  child.stderr?.on('data', () => undefined);
  return { child, lines };
}

function stop(child: ChildProcess | undefined): void {
  if (child?.pid === undefined || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL'); // its process group: ip netns exec / nsenter and what they run
  } catch {}
}

describe('phone network isolation (two tenants, podman inside a network namespace)', () => {
  const rand = randomBytes(3).toString('hex');
  const hostNs = `cphone-iso-${rand}`;
  const upNs = `cphone-isu-${rand}`;
  const scope = `iso-${rand}`;
  const run = inNetns(hostNs);
  let dir = '';
  let docker: Docker;
  let runtime: DockerRuntime;
  let firewall: PhoneFirewall;
  let isolation: NetworkIsolation | undefined;
  let engine: ReturnType<typeof background> | undefined;
  let servers: ReturnType<typeof background> | undefined;
  let agentPort: ReturnType<typeof background> | undefined;
  const phones: Record<'a' | 'b', RuntimeDevice> = {} as never;
  const gateway: Record<'a' | 'b', string> = {} as never;

  const serverLog = () =>
    (servers?.lines ?? []).map((l) => JSON.parse(l) as { event: string; local?: string });
  const agentLog = () =>
    (agentPort?.lines ?? []).map((l) => JSON.parse(l) as { event: string; local?: string });

  async function probeFrom(phone: 'a' | 'b', targets: readonly Target[]): Promise<Map<string, ProbeResult>> {
    const r = await execIn(docker, `cphone-${phones[phone].deviceId}`, [
      'node',
      '-e',
      PROBE,
      JSON.stringify(targets),
    ]);
    assert.equal(r.code, 0, `probe in phone ${phone}: ${r.stdout}`);
    const results = JSON.parse(r.stdout.trim().split('\n').pop() as string) as ProbeResult[];
    return new Map(results.map((x) => [x.name, x]));
  }

  /** The same probe from the host's namespace, where the agent runs. */
  function probeFromHost(targets: readonly Target[]): Map<string, ProbeResult> {
    const out = sh(['ip', 'netns', 'exec', hostNs, process.execPath, '-e', PROBE, JSON.stringify(targets)]);
    const results = JSON.parse(out.trim()) as ProbeResult[];
    return new Map(results.map((x) => [x.name, x]));
  }

  const blockedTargets = (me: 'a' | 'b'): Target[] => {
    const other = me === 'a' ? 'b' : 'a';
    return [
      { name: 'other phone adbd', host: phones[other].network?.address as string, port: 5555 },
      { name: 'agent port (gateway)', host: gateway[me], port: AGENT_PORT },
      { name: 'agent port (uplink)', host: HOST_UPLINK, port: AGENT_PORT },
      { name: 'metadata', host: METADATA, port: SERVER_PORT },
      { name: 'private', host: PRIVATE, port: SERVER_PORT },
    ];
  };

  before(async () => {
    const main = await connectEngine(); // the stand-in image, built into podman's default store
    dir = await mkdtemp(join(tmpdir(), 'cphone-iso-'));
    // Two namespaces joined by a veth; the upstream one holds the test servers' addresses.
    sh(['ip', 'netns', 'add', hostNs]);
    sh(['ip', 'netns', 'add', upNs]);
    const inHost = (...a: string[]) => sh(['ip', '-n', hostNs, ...a]);
    const inUp = (...a: string[]) => sh(['ip', '-n', upNs, ...a]);
    inHost('link', 'set', 'lo', 'up');
    inUp('link', 'set', 'lo', 'up');
    sh([
      'ip',
      'link',
      'add',
      `cpih${rand}`,
      'netns',
      hostNs,
      'type',
      'veth',
      'peer',
      'name',
      'up0',
      'netns',
      upNs,
    ]);
    inHost('addr', 'add', `${HOST_UPLINK}/30`, 'dev', `cpih${rand}`);
    inHost('link', 'set', `cpih${rand}`, 'up');
    inHost('route', 'add', 'default', 'via', UPSTREAM_UPLINK);
    inUp('addr', 'add', `${UPSTREAM_UPLINK}/30`, 'dev', 'up0');
    inUp('link', 'set', 'up0', 'up');
    // The servers' addresses on the upstream namespace's loopback (this kernel has no dummy links).
    for (const address of [INTERNET, METADATA, PRIVATE]) inUp('addr', 'add', `${address}/32`, 'dev', 'lo');
    sh(['ip', 'netns', 'exec', hostNs, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);

    await writeFile(join(dir, 'server.mjs'), SERVER);
    servers = background([
      'ip',
      'netns',
      'exec',
      upNs,
      process.execPath,
      join(dir, 'server.mjs'),
      String(SERVER_PORT),
    ]);
    agentPort = background([
      'ip',
      'netns',
      'exec',
      hostNs,
      process.execPath,
      join(dir, 'server.mjs'),
      String(AGENT_PORT),
    ]);

    // podman's API service in the host namespace: its own storage (the stand-in image read from the
    // default store), run dir and network configs. nsenter, not `ip netns exec`: the latter mounts a
    // fresh /sys for the namespace, without the cgroup file systems runc needs.
    await mkdir(join(dir, 'net'));
    await mkdir(join(dir, 'tmp'));
    await writeFile(
      join(dir, 'storage.conf'),
      `[storage]\ndriver = "overlay"\ngraphroot = "${dir}/root"\nrunroot = "${dir}/run"\n` +
        `[storage.options]\nadditionalimagestores = ["/var/lib/containers/storage"]\n`,
    );
    const socketPath = join(dir, 'api.sock');
    engine = background(
      [
        'nsenter',
        `--net=/run/netns/${hostNs}`,
        'podman',
        '--network-config-dir',
        join(dir, 'net'),
        '--tmpdir',
        join(dir, 'tmp'),
        'system',
        'service',
        '--time=0',
        `unix://${socketPath}`,
      ],
      { ...process.env, CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf') },
    );
    docker = new Docker({ socketPath });
    await waitFor('podman service in the namespace', async () => ((await docker.ping()) ? true : undefined));
    await waitFor('test servers', async () =>
      serverLog().length > 0 && agentLog().length > 0 ? true : undefined,
    );

    runtime = new DockerRuntime({ docker, config: { scope, pullPolicy: 'never' } });
    firewall = new PhoneFirewall({ bridgePrefix: 'cph', run });
    for (const [key, tenant] of [
      ['a', 'tenant-alpha'],
      ['b', 'tenant-beta'],
    ] as const) {
      const spec = contractSpec({ image: main.image, idPrefix: `iso${rand}-` } as never, key, {
        tenantId: tenant,
      });
      await runtime.create(spec);
      await runtime.start(spec.deviceId);
      phones[key] = await waitFor(`phone ${key} running with an address`, async () => {
        const d = await runtime.inspect(spec.deviceId);
        return d?.network !== undefined && d.adb !== undefined ? d : undefined;
      });
      const info = await docker.getContainer(`cphone-${spec.deviceId}`).inspect();
      gateway[key] = info.NetworkSettings.Networks[phones[key].network?.name as string]?.Gateway as string;
    }
  });

  after(async () => {
    await isolation?.close().catch(() => undefined);
    if (docker !== undefined) await removeScope(docker, scope).catch(() => undefined);
    stop(engine?.child);
    stop(servers?.child);
    stop(agentPort?.child);
    if (dir !== '') {
      // podman's exec monitors (conmon) linger minutes after an exec ends: end every process of this
      // test's engine (each names its directory on its command line).
      for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
        try {
          if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir))
            process.kill(Number(pid), 'SIGKILL');
        } catch {}
      }
      // Container storage left mounted by a failed run would keep the directory busy.
      try {
        const mounts = sh(['awk', '{print $2}', '/proc/mounts'])
          .split('\n')
          .filter((m) => m.startsWith(dir));
        for (const m of mounts.sort().reverse()) sh(['umount', '-l', m]);
      } catch {}
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
    for (const ns of [hostNs, upNs]) {
      try {
        sh(['ip', 'netns', 'del', ns]);
      } catch {}
    }
  });

  it('without the agent firewall a phone reaches the metadata, private and agent addresses (the test can tell)', async () => {
    const results = await probeFrom('a', [
      { name: 'metadata', host: METADATA, port: SERVER_PORT },
      { name: 'private', host: PRIVATE, port: SERVER_PORT },
      { name: 'agent port', host: gateway.a, port: AGENT_PORT },
      { name: 'internet', host: INTERNET, port: SERVER_PORT },
    ]);
    for (const [name, r] of results) assert.equal(r.ok, true, `${name}: ${JSON.stringify(r)}`);
    // Each phone sits on its own tenant's bridge, named by the agent's prefix.
    assert.notEqual(phones.a.network?.bridge, phones.b.network?.bridge);
    for (const p of [phones.a, phones.b]) assert.match(p.network?.bridge ?? '', /^cph[0-9a-f]{12}$/);
  });

  it('with it, each phone reaches the internet server only, and the agent still reaches their adbd', async () => {
    // What the agent does on start, with iptables run in the test's namespace.
    isolation = await startNetworkIsolation(
      { enabled: true, recheckMs: 1000, httpProxy: undefined },
      runtime,
      pino({ level: 'silent' }),
      run,
    );
    const synced = await firewall.egressRules();
    assert.deepEqual(synced.map((r) => r.deviceId).sort(), [phones.a.deviceId, phones.b.deviceId].sort());
    const beforeConnects = serverLog().filter((l) => l.event === 'connect').length;
    const agentBefore = agentLog().filter((l) => l.event === 'connect').length;
    for (const me of ['a', 'b'] as const) {
      const results = await probeFrom(me, [
        ...blockedTargets(me),
        { name: 'internet', host: INTERNET, port: SERVER_PORT, bytes: 10 },
      ]);
      for (const t of blockedTargets(me)) {
        const r = results.get(t.name);
        // REJECT with admin-prohibited: the phone's connect fails at once, not by a timeout.
        assert.equal(
          r?.error,
          'EHOSTUNREACH',
          `phone ${me} -> ${t.name} must be refused: ${JSON.stringify(r)}`,
        );
      }
      const internet = results.get('internet');
      assert.equal(internet?.ok, true, `phone ${me} -> internet: ${JSON.stringify(internet)}`);
      assert.equal(internet?.reply, 'ok 10');
    }
    const connects = serverLog()
      .filter((l) => l.event === 'connect')
      .slice(beforeConnects);
    assert.deepEqual(
      connects.map((c) => c.local),
      [INTERNET, INTERNET],
      'the upstream servers saw the two internet connections and nothing else',
    );
    assert.equal(
      agentLog().filter((l) => l.event === 'connect').length,
      agentBefore,
      'nothing reached the agent port',
    );
    // ADB from the agent: the published port on 127.0.0.1 (the default), answered by the phone.
    const adb = probeFromHost(
      (['a', 'b'] as const).map((k) => ({
        name: k,
        host: phones[k].adb?.host as string,
        port: phones[k].adb?.port as number,
        bytes: 7,
      })),
    );
    for (const k of ['a', 'b']) {
      assert.equal(adb.get(k)?.ok, true, `agent -> phone ${k} adbd: ${JSON.stringify(adb.get(k))}`);
      assert.equal(adb.get(k)?.reply, 'x'.repeat(7), 'the stand-in adbd echoes');
    }
  });

  it('meters each phone’s egress to the internet, growing with the bytes sent and not counting refused attempts', async () => {
    const ids = [phones.a.deviceId, phones.b.deviceId];
    await isolation?.takeEgress(ids); // what the last test sent
    for (const me of ['a', 'b'] as const) await probeFrom(me, blockedTargets(me));
    const refusedOnly = await isolation?.takeEgress(ids);
    assert.equal(
      refusedOnly?.size,
      0,
      `refused attempts count nothing: ${JSON.stringify([...(refusedOnly ?? [])])}`,
    );

    const sent = { a: 50_000, b: 20_000 };
    for (const me of ['a', 'b'] as const) {
      const r = await probeFrom(me, [
        { name: 'internet', host: INTERNET, port: SERVER_PORT, bytes: sent[me] },
      ]);
      assert.equal(r.get('internet')?.reply, `ok ${sent[me]}`);
    }
    const first = await isolation?.takeEgress(ids);
    for (const me of ['a', 'b'] as const) {
      const bytes = Number(first?.get(phones[me].deviceId) ?? 0n);
      // IP packets: the payload plus headers of a few dozen segments and the handshake.
      assert.ok(
        bytes >= sent[me] && bytes < sent[me] + 10_000,
        `phone ${me} egress ${bytes} for ${sent[me]} sent`,
      );
    }
    const more = 300_000;
    await probeFrom('a', [{ name: 'internet', host: INTERNET, port: SERVER_PORT, bytes: more }]);
    const second = await isolation?.takeEgress(ids);
    const grown = Number(second?.get(phones.a.deviceId) ?? 0n);
    assert.ok(grown >= more && grown < more + 30_000, `phone a egress ${grown} for ${more} more sent`);
    assert.equal(second?.get(phones.b.deviceId), undefined, 'phone b sent nothing more');
  });

  it('puts its jump back in front when other rules are inserted ahead, and removes an empty tenant network with its last phone', async () => {
    sh(['ip', 'netns', 'exec', hostNs, 'iptables', '-I', 'FORWARD', '1', '-j', 'ACCEPT']);
    await isolation?.recheck();
    const forward = sh(['ip', 'netns', 'exec', hostNs, 'iptables', '-S', 'FORWARD'])
      .split('\n')
      .filter((l) => l.startsWith('-A FORWARD'));
    assert.equal(forward[0], `-A FORWARD -j ${FORWARD_CHAIN}`);
    const blocked = await probeFrom('a', [{ name: 'metadata', host: METADATA, port: SERVER_PORT }]);
    assert.equal(blocked.get('metadata')?.ok, false);

    await runtime.remove(phones.b.deviceId, { keepData: false });
    await isolation?.recheck();
    const rules = sh(['ip', 'netns', 'exec', hostNs, 'iptables', '-S', EGRESS_CHAIN]);
    assert.doesNotMatch(rules, new RegExp(phones.b.deviceId));
    assert.match(rules, new RegExp(phones.a.deviceId));
    await assert.rejects(docker.getNetwork(phones.b.network?.name as string).inspect());
    await docker.getNetwork(phones.a.network?.name as string).inspect();
  });

  it('with a phone proxy configured, phones reach the proxy (counted as egress) and still nothing else private', async () => {
    await isolation?.close(); // its timer would rewrite the chains without the proxy
    isolation = undefined;
    const withProxy = new PhoneFirewall({
      bridgePrefix: 'cph',
      proxy: { host: PRIVATE, port: SERVER_PORT },
      run,
    });
    await withProxy.ensure();
    const before = (await withProxy.egressRules()).find((r) => r.deviceId === phones.a.deviceId)?.bytes ?? 0n;
    const results = await probeFrom('a', [
      { name: 'proxy', host: PRIVATE, port: SERVER_PORT, bytes: 20_000 },
      { name: 'metadata', host: METADATA, port: SERVER_PORT },
      { name: 'private, other port', host: PRIVATE, port: AGENT_PORT },
    ]);
    assert.equal(results.get('proxy')?.reply, 'ok 20000', JSON.stringify(results.get('proxy')));
    assert.equal(results.get('metadata')?.error, 'EHOSTUNREACH');
    assert.equal(results.get('private, other port')?.error, 'EHOSTUNREACH');
    const after = (await withProxy.egressRules()).find((r) => r.deviceId === phones.a.deviceId)?.bytes ?? 0n;
    assert.ok(after - before >= 20_000n, `proxy traffic counted: ${after - before}`);
  });
});
