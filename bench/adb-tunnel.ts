// npm run bench -- adb-tunnel [--mib 64] [--rounds 3] [--shells 300] [--tls on|off] [--cpu-prof DIR]
// Remote ADB through the platform against ADB straight to the same virtual phone, in one run, on
// loopback. The tunnel path is the one a user's request takes: CreateAdbTunnel through the public
// Connect API with a tenant's API key, the CLI library's local port (cli/src/adb-tunnel), a WebSocket
// to the agent's stream endpoint (WSS with its generated CA by default; --tls off is the embedded
// default's plain ws on loopback), the agent's TCP connection to the phone's adbd. Every part runs
// in a process of its own, as on real machines: the control plane, the agent (the daemon's
// startAgent), the phones (a real phone is a container beside the agent), the CLI's tunnel, the shell
// client, and Debian's adb server. Real sockets throughout.
//   tunnel_mb_per_s / direct_mb_per_s   Debian's `adb push` of a --mib MiB file, best of --rounds
//                                       (MB = 10^6 bytes), through the tunnel / straight to the phone
//   ratio                               tunnel / direct
//   shell_rtt_p50_ms / _p99_ms          one shell command (`echo`) with its answer, through the
//                                       tunnel, by @yume-chan/adb on the local port (no adb server)
//   direct_shell_rtt_p50_ms / _p99_ms   the same straight to the phone's adbd
//   added_rtt_p50_ms                    what the tunnel adds to a round trip (p50 tunnel - direct)
//   cpu_ms_per_mib_*                    CPU each process spent per MiB pushed, on each path
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@connectrpc/connect';
import { bearerTransport } from '@cphone/control-plane';
import { createTestDatabase } from '@cphone/control-plane/testing';
import { DebianAdb } from '@cphone/host-agent/testing';
import {
  ApiKeyService,
  DeviceService,
  DeviceState,
  HostService,
  HostState,
  ImageService,
  Role,
  TenantKind,
  TenantService,
} from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import type { AdbTunnelChildReply, AdbTunnelChildRequest } from './_adb-tunnel-child.js';
import { agentChildEnv } from './_agent-env.js';
import type { AgentReply, AgentRequest } from './_agent-overhead-agent.js';
import type { PlaneReply } from './_agent-overhead-control-plane.js';
import type { PhonesReply, PhonesRequest } from './_agent-overhead-phones.js';
import { arg } from './_args.js';
import { Child } from './_child.js';
import { cpuSeconds } from './_proc.js';
import { ms, percentile } from './_sfu-media.js';

const MIB = arg('mib', 64);
const ROUNDS = arg('rounds', 3);
const SHELLS = arg('shells', 300);
const tlsAt = process.argv.indexOf('--tls');
const TLS = tlsAt < 0 || process.argv[tlsAt + 1] !== 'off';
// --cpu-prof DIR: V8 CPU profiles of the child processes, written when they exit.
const profAt = process.argv.indexOf('--cpu-prof');
const PROFILE_DIR = profAt < 0 ? undefined : process.argv[profAt + 1];
const execArgv = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [];

type Reply<K extends AdbTunnelChildReply['op']> = Extract<AdbTunnelChildReply, { op: K }>;
const userSide = (name: string) =>
  Child.start<AdbTunnelChildRequest, AdbTunnelChildReply>(name, './_adb-tunnel-child.ts', { execArgv });
async function ask<K extends AdbTunnelChildReply['op']>(
  child: Child<AdbTunnelChildRequest, AdbTunnelChildReply>,
  request: AdbTunnelChildRequest,
  op: K,
): Promise<Reply<K>> {
  const reply = await child.ask(request);
  if (reply.op !== op) throw new Error(`${child.name}: ${reply.op === 'failed' ? reply.message : reply.op}`);
  return reply as Reply<K>;
}

/** The pid of the private adb server (the one listening on `socket`). */
async function adbServerPid(socket: string): Promise<number> {
  for (const entry of await readdir('/proc')) {
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(socket) && cmdline.includes('server')) return Number(entry);
  }
  throw new Error(`no adb server on ${socket}`);
}

const dir = await mkdtemp(join(tmpdir(), 'cphone-bench-adb-tunnel-'));
const database = process.env.DATABASE_URL ? await createTestDatabase({ kind: 'postgres' }) : undefined;
const plane = Child.start<{ op: 'stats' }, PlaneReply>(
  'control plane',
  './_agent-overhead-control-plane.ts',
  {
    env: { AGENT_OVERHEAD_PLANE_DIR: join(dir, 'control-plane'), DATABASE_URL: database?.url ?? '' },
  },
);
const phones = Child.start<PhonesRequest, PhonesReply>('phones', './_agent-overhead-phones.ts', { execArgv });
const tunnelSide = userSide('tunnel');
const shellSide = userSide('shell client');
const [planeReady, phonesReady] = await Promise.all([plane.ready(), phones.ready()]);
if (planeReady.op !== 'ready' || phonesReady.op !== 'ready') throw new Error('a child did not start');
await Promise.all([tunnelSide.ready(), shellSide.ready()]);

const platform = bearerTransport(planeReady.httpUrl, planeReady.token);
const hostsApi = createClient(HostService, platform);
const enrolled = await hostsApi.enrollHost({ name: 'bench-host', arch: 'arm64' });
const hostId = enrolled.host?.hostId ?? '';
const tenantId =
  (
    await createClient(TenantService, platform).createTenant({
      kind: TenantKind.RESELLER,
      displayName: 'bench',
    })
  ).tenant?.tenantId ?? '';
await createClient(ImageService, platform).createImage({
  imageId: 'virtual-phone',
  image: { displayName: 'Virtual phone', containerImage: 'cphone/virtual-phone:1', archs: ['arm64'] },
});
const caFile = join(dir, 'ca.pem');
await writeFile(caFile, planeReady.caPem);
const agent = Child.start<AgentRequest, AgentReply>('agent', './_agent-overhead-agent.ts', {
  execArgv,
  env: {
    ...agentChildEnv({
      hostId,
      credential: enrolled.credential,
      grpcPort: planeReady.grpcPort,
      caFile,
      dir,
      phonesUrl: phonesReady.url,
    }),
    CPHONE_STREAM_BIND: '127.0.0.1',
    CPHONE_STREAM_PORT: '0',
    CPHONE_RTC_LISTEN_IP: '127.0.0.1',
    CPHONE_RTC_PORT: '0',
    CPHONE_SFU_WORKERS: '1',
    ...(TLS ? {} : { CPHONE_STREAM_TLS: 'off' }),
    CPHONE_CAPACITY_VCPU_MILLICORES: '4000',
    CPHONE_CAPACITY_MEMORY_MIB: '8192',
    CPHONE_CAPACITY_STORAGE_GIB: '32',
    CPHONE_LOG_LEVEL: 'silent',
  },
});
const adb = new DebianAdb();
try {
  await agent.ready();
  await waitFor(
    'the host READY and connected',
    async () => (await hostsApi.getHost({ hostId })).host,
    (h) => h?.state === HostState.READY && h.connected === true,
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  const devices = createClient(DeviceService, platform);
  const { devices: created } = await devices.batchCreateDevices({
    tenantId,
    requests: [
      {
        displayName: 'bench-adb',
        spec: { imageId: 'virtual-phone', vcpuMillicores: 1000, memoryMib: 1024, storageGib: 4 },
      },
    ],
  });
  const deviceId = created[0]?.deviceId ?? '';
  await waitFor(
    `phone ${deviceId} RUNNING`,
    async () => (await devices.getDevice({ deviceId })).device?.state,
    (s) => s === DeviceState.RUNNING,
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  const phonePort = (await phones.ask<Extract<PhonesReply, { op: 'port' }>>({ op: 'port', deviceId })).port;
  if (phonePort === undefined) throw new Error(`no virtual phone ${deviceId}`);

  const { secret: apiKey } = await createClient(ApiKeyService, platform).createApiKey({
    tenantId,
    role: Role.TENANT_USER,
    displayName: 'bench developer',
  });
  const ca = TLS ? await readFile(join(dir, 'agent', 'stream-tls', 'ca.pem'), 'utf8') : undefined;
  const tunnel = await ask(
    tunnelSide,
    { op: 'tunnel', apiUrl: planeReady.httpUrl, apiKey, deviceId, ...(ca !== undefined ? { ca } : {}) },
    'listening',
  );
  const viaTunnel = `127.0.0.1:${tunnel.port}`;
  const direct = `127.0.0.1:${phonePort}`;
  for (const serial of [viaTunnel, direct]) {
    await adb.text(['connect', serial]);
    await waitFor(
      `adb to see ${serial}`,
      () => adb.state(serial),
      (s) => s === 'device',
    );
  }

  const file = join(dir, 'push.bin');
  await writeFile(file, randomBytes(MIB << 20));
  // Who spends the CPU of a push (every thread of each process, from the scheduler's own count).
  const pids = {
    adb_server: await adbServerPid(adb.socket.replace(/^localabstract:/, '')),
    cli_tunnel: tunnelSide.process.pid ?? 0,
    agent: agent.process.pid ?? 0,
    phone: phones.process.pid ?? 0,
  };
  type Who = keyof typeof pids;
  const cpu = { tunnel: {} as Record<Who, number>, direct: {} as Record<Who, number> };
  const push = async (path: 'tunnel' | 'direct', serial: string) => {
    const before = await Promise.all(Object.values(pids).map(cpuSeconds));
    const started = performance.now();
    await adb.text(['-s', serial, 'push', file, '/data/local/tmp/push.bin'], { timeoutMs: 300_000 });
    const took = performance.now() - started;
    const after = await Promise.all(Object.values(pids).map(cpuSeconds));
    Object.keys(pids).forEach((who, i) => {
      cpu[path][who as Who] = (cpu[path][who as Who] ?? 0) + (after[i] ?? 0) - (before[i] ?? 0);
    });
    return (MIB * 1.048576) / (took / 1000);
  };
  const rates = { tunnel: [] as number[], direct: [] as number[] };
  // Alternated, so a busy moment of the machine falls on both paths alike.
  for (let i = 0; i < ROUNDS; i++) {
    rates.direct.push(await push('direct', direct));
    rates.tunnel.push(await push('tunnel', viaTunnel));
  }
  const best = (v: number[]) => Math.max(...v);
  const perMib = (spent: Record<Who, number>) =>
    Object.fromEntries(
      Object.entries(spent).map(([who, s]) => [who, Number(((s * 1000) / (MIB * ROUNDS)).toFixed(2))]),
    );

  const shellTimes = async (port: number, serial: string) =>
    (
      await ask(
        shellSide,
        {
          op: 'shells',
          host: '127.0.0.1',
          port,
          serial,
          count: SHELLS,
          warmup: 20,
          keysDir: join(dir, 'yume'),
        },
        'times',
      )
    ).ms;
  const rtt = { direct: [] as number[], tunnel: [] as number[] };
  for (let i = 0; i < 2; i++) {
    rtt.direct.push(...(await shellTimes(phonePort, direct)));
    rtt.tunnel.push(...(await shellTimes(tunnel.port, viaTunnel)));
  }

  const figures = {
    tunnel_mb_per_s: Number(best(rates.tunnel).toFixed(1)),
    direct_mb_per_s: Number(best(rates.direct).toFixed(1)),
    ratio: Number((best(rates.tunnel) / best(rates.direct)).toFixed(3)),
    shell_rtt_p50_ms: Number(percentile(rtt.tunnel, 50).toFixed(2)),
    shell_rtt_p99_ms: Number(percentile(rtt.tunnel, 99).toFixed(2)),
    direct_shell_rtt_p50_ms: Number(percentile(rtt.direct, 50).toFixed(2)),
    direct_shell_rtt_p99_ms: Number(percentile(rtt.direct, 99).toFixed(2)),
    added_rtt_p50_ms: Number((percentile(rtt.tunnel, 50) - percentile(rtt.direct, 50)).toFixed(2)),
    endpoint: TLS ? 'wss' : 'ws',
    cpu_ms_per_mib_tunnel: perMib(cpu.tunnel),
    cpu_ms_per_mib_direct: perMib(cpu.direct),
  };
  console.log(
    `endpoint ${TLS ? 'wss (generated CA)' : 'plain ws on loopback'}; ${MIB} MiB pushes, ${ROUNDS} rounds`,
  );
  console.log(
    `adb push   tunnel ${rates.tunnel.map((r) => r.toFixed(1)).join(', ')} MB/s; direct ${rates.direct.map((r) => r.toFixed(1)).join(', ')} MB/s`,
  );
  console.log(
    `shell echo tunnel p50 ${ms(percentile(rtt.tunnel, 50))} ms p99 ${ms(percentile(rtt.tunnel, 99))} ms; direct p50 ${ms(percentile(rtt.direct, 50))} ms p99 ${ms(percentile(rtt.direct, 99))} ms (n ${rtt.tunnel.length} each)`,
  );
  console.log(JSON.stringify(figures));
} finally {
  await adb.dispose();
  await agent.ask({ op: 'close' }).catch(() => undefined);
  for (const child of [agent, tunnelSide, shellSide, phones, plane]) await child.stop();
  await database?.close();
  await rm(dir, { recursive: true, force: true });
}
