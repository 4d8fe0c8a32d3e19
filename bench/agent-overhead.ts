import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '@connectrpc/connect';
import { bearerTransport } from '@cphone/control-plane';
import { createTestDatabase } from '@cphone/control-plane/testing';
import { DeviceService, DeviceState, HostService, ImageService } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { agentChildEnv } from './_agent-env.js';
import type { AgentReply, AgentRequest } from './_agent-overhead-agent.js';
import type { PlaneReply } from './_agent-overhead-control-plane.js';
import type { PhonesReply } from './_agent-overhead-phones.js';
import { summariseProfile } from './_agent-overhead-profile.js';
import { arg } from './_args.js';
import { Child } from './_child.js';
import { cpuSeconds } from './_proc.js';

const MIB = 2 ** 20;
const TARGET_RSS_MIB = 2;
const TARGET_CPU_PCT = 0.1;

async function openFds(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

interface CpuWindow {
  /** % of one core over the whole window. */
  pct: number;
  /** The same for each 10 s slice: their spread shows how noisy the figure is. */
  slices: number[];
}

/** % of one core the process used over `seconds` of idle time, also per 10 s slice. */
async function idleCpu(pid: number, seconds: number): Promise<CpuWindow> {
  const c0 = await cpuSeconds(pid);
  const t0 = performance.now();
  const slices: number[] = [];
  let last = { cpu: c0, at: t0 };
  for (let left = seconds; left > 0; left -= 10) {
    await sleep(Math.min(10, left) * 1000);
    const now = { cpu: await cpuSeconds(pid), at: performance.now() };
    slices.push(((now.cpu - last.cpu) / ((now.at - last.at) / 1000)) * 100);
    last = now;
  }
  return { pct: ((last.cpu - c0) / ((last.at - t0) / 1000)) * 100, slices };
}

const spread = (w: CpuWindow) => `10 s slices: ${w.slices.map((p) => p.toFixed(2)).join(' ')} %`;

type AgentChild = Child<AgentRequest, AgentReply>;
type Stats = Extract<AgentReply, { op: 'stats' }>;

/** Profiles `seconds` of the idle agent and prints the summary. */
async function idleProfile(agent: AgentChild, file: string, seconds: number, what: string): Promise<void> {
  await agent.ask({ op: 'profile-start' });
  await sleep(seconds * 1000);
  await agent.ask({ op: 'profile-stop', file });
  console.log(
    `cpu profile of ${seconds} idle s with ${what} (agent main thread; the profiler adds its own cost):`,
  );
  console.log(summariseProfile(JSON.parse(await readFile(file, 'utf8')), 12));
}

async function main(): Promise<void> {
  const n = arg('phones', 500);
  const baselineWindowS = arg('baseline-window', 30);
  const windowS = arg('window', 60);
  const bootDelayMs = arg('boot-delay-ms', 1000);
  const profileS = arg('profile', 0);
  const dir = await mkdtemp(join(tmpdir(), 'cphone-agent-overhead-'));
  const database = process.env.DATABASE_URL ? await createTestDatabase({ kind: 'postgres' }) : undefined;
  const began = performance.now();
  const elapsed = () => `${((performance.now() - began) / 1000).toFixed(0)} s`;
  console.log(
    `agent-overhead: ${n} phones, database ${database ? 'postgres' : 'pglite'}, phone boot ${bootDelayMs} ms, windows ${baselineWindowS} s / ${windowS} s`,
  );

  const plane = Child.start<{ op: 'stats' }, PlaneReply>(
    'control plane',
    './_agent-overhead-control-plane.ts',
    {
      env: { AGENT_OVERHEAD_PLANE_DIR: join(dir, 'control-plane'), DATABASE_URL: database?.url ?? '' },
    },
  );
  const phones = Child.start<{ op: 'stats' }, PhonesReply>('phones', './_agent-overhead-phones.ts');
  const [planeReady, phonesReady] = await Promise.all([plane.ready(), phones.ready()]);
  if (planeReady.op !== 'ready' || phonesReady.op !== 'ready') throw new Error('a child did not start');

  const token = planeReady.token;
  const transport = bearerTransport(planeReady.httpUrl, token);
  const hostsApi = createClient(HostService, transport);
  const devicesApi = createClient(DeviceService, transport);
  const enrolled = await hostsApi.enrollHost({ name: 'bench-host', arch: 'arm64' });
  const hostId = enrolled.host?.hostId ?? '';
  await createClient(ImageService, transport).createImage({
    imageId: 'virtual-phone',
    image: { displayName: 'Virtual phone', containerImage: 'cphone/virtual-phone:1', archs: ['arm64'] },
  });
  const spec = { imageId: 'virtual-phone', vcpuMillicores: 1000, memoryMib: 1024, storageGib: 4 };

  const caFile = join(dir, 'ca.pem');
  await writeFile(caFile, planeReady.caPem);
  const logFile = join(dir, 'agent.log');
  const logFd = openSync(logFile, 'w');
  const agent: AgentChild = Child.start('agent', './_agent-overhead-agent.ts', {
    stdout: logFd,
    env: {
      ...agentChildEnv({
        hostId,
        credential: enrolled.credential,
        grpcPort: planeReady.grpcPort,
        caFile,
        dir,
        phonesUrl: phonesReady.url,
      }),
      CPHONE_STREAM: 'off',
      CPHONE_MAX_DEVICES: String(n),
      CPHONE_CAPACITY_VCPU_MILLICORES: String(n * spec.vcpuMillicores),
      CPHONE_CAPACITY_MEMORY_MIB: String(n * spec.memoryMib),
      CPHONE_CAPACITY_STORAGE_GIB: String(n * spec.storageGib),
      CPHONE_USAGE_INTERVAL_MS: '5000',
      CPHONE_LOG_LEVEL: 'info',
      AGENT_OVERHEAD_BOOT_DELAY_MS: String(bootDelayMs),
    },
  });
  closeSync(logFd);
  await agent.ready();
  const pid = agent.process.pid ?? 0;
  await waitFor(
    'the host READY',
    async () => (await hostsApi.getHost({ hostId })).host,
    (host) => host?.connected === true && host.capacity?.devices === n,
    { timeoutMs: 60_000, intervalMs: 200 },
  );
  console.log(`[${elapsed()}] agent pid ${pid} connected; baseline window`);

  // Baseline: connected, heartbeating, sampling an empty device list; past the start's JIT and GC.
  await sleep(15_000);
  const baseCpu = await idleCpu(pid, baselineWindowS);
  const baseCpuPct = baseCpu.pct;
  const base = await agent.ask<Stats>({ op: 'stats', gc: true });
  const baseFds = await openFds(pid);
  console.log(
    `baseline (0 phones): RSS ${(base.rss / MIB).toFixed(1)} MiB (JS heap ${(base.heapUsed / MIB).toFixed(1)} MiB), CPU ${baseCpuPct.toFixed(2)} % of a core over ${baselineWindowS} s (${spread(baseCpu)}), ${baseFds} fds`,
  );

  const profileDir = join(dir, 'profiles');
  if (profileS > 0) {
    await mkdir(profileDir);
    await idleProfile(agent, join(profileDir, 'baseline.cpuprofile'), profileS, '0 phones');
  }

  // N devices through the API; the agent converges as the desired deltas arrive.
  if (profileS > 0) await agent.ask({ op: 'profile-start' });
  const convergeCpu0 = await cpuSeconds(pid);
  const watching = agent.ask<Extract<AgentReply, { op: 'watch' }>>({ op: 'watch', count: n });
  const createStart = Date.now();
  for (let done = 0; done < n; done += 100) {
    const size = Math.min(100, n - done);
    const res = await devicesApi.batchCreateDevices({
      requests: Array.from({ length: size }, () => ({ spec })),
    });
    if (res.devices.length !== size) throw new Error(`batch created ${res.devices.length} of ${size}`);
  }
  const createdAt = Date.now();
  const converged = await watching;
  const convergeCpuS = (await cpuSeconds(pid)) - convergeCpu0;
  const convergeProfile = join(profileDir, 'converge.cpuprofile');
  if (profileS > 0) await agent.ask({ op: 'profile-stop', file: convergeProfile });
  const convergeS = (converged.runningAt - converged.desiredAt) / 1000;
  await waitFor(
    'the control plane to list every device RUNNING',
    async () => {
      let running = 0;
      let pageToken = '';
      do {
        const page = await devicesApi.listDevices({
          hostId,
          states: [DeviceState.RUNNING],
          pageSize: 1000,
          pageToken,
        });
        running += page.devices.length;
        pageToken = page.nextPageToken;
      } while (pageToken !== '');
      return running;
    },
    (running) => running >= n,
    { timeoutMs: 120_000, intervalMs: 200 },
  );
  const apiRunningS = (Date.now() - createStart) / 1000;
  console.log(
    `[${elapsed()}] converge: ${n} phones RUNNING ${convergeS.toFixed(1)} s after the first desired change reached the agent (API calls took ${((createdAt - createStart) / 1000).toFixed(1)} s; control plane listed all RUNNING ${apiRunningS.toFixed(1)} s after the first call); agent CPU ${convergeCpuS.toFixed(1)} s (${((convergeCpuS / n) * 1000).toFixed(1)} ms per phone)`,
  );
  if (profileS > 0) {
    console.log(`cpu profile of the convergence (agent main thread):`);
    console.log(summariseProfile(JSON.parse(await readFile(convergeProfile, 'utf8')), 15));
  }

  // Loaded: let the last acks and the first resync pass, then the idle window.
  await sleep(10_000);
  const planeCpu0 = await plane.ask<Extract<PlaneReply, { op: 'stats' }>>({ op: 'stats' });
  const loadedCpu = await idleCpu(pid, windowS);
  const loadedCpuPct = loadedCpu.pct;
  const planeCpu1 = await plane.ask<Extract<PlaneReply, { op: 'stats' }>>({ op: 'stats' });
  const loaded = await agent.ask<Stats>({ op: 'stats', gc: true });
  const loadedFds = await openFds(pid);
  const phoneStats = await phones.ask<Extract<PhonesReply, { op: 'stats' }>>({ op: 'stats' });
  console.log(
    `loaded (${n} phones): RSS ${(loaded.rss / MIB).toFixed(1)} MiB (JS heap ${(loaded.heapUsed / MIB).toFixed(1)} MiB), CPU ${loadedCpuPct.toFixed(2)} % of a core over ${windowS} s (${spread(loadedCpu)}), ${loadedFds} fds, states ${JSON.stringify(loaded.states)}, usage seq ${loaded.usageSequence} (${loaded.usagePending} unacked)`,
  );
  console.log(
    `  (not counted: phone process RSS ${(phoneStats.rss / MIB).toFixed(0)} MiB for ${phoneStats.phones} phones; control plane ${(((planeCpu1.cpuMicros - planeCpu0.cpuMicros) / 1e6 / windowS) * 100).toFixed(2)} % of a core)`,
  );

  const rssPerPhoneMib = (loaded.rss - base.rss) / n / MIB;
  const heapPerPhoneKib = (loaded.heapUsed - base.heapUsed) / n / 1024;
  const externalPerPhoneKib = (loaded.external - base.external) / n / 1024;
  const cpuPerPhonePct = (loadedCpuPct - baseCpuPct) / n;
  console.log(
    `per phone: RSS ${(rssPerPhoneMib * 1024).toFixed(0)} KiB (JS heap ${heapPerPhoneKib.toFixed(1)} KiB, external ${externalPerPhoneKib.toFixed(1)} KiB) = ${(rssPerPhoneMib / TARGET_RSS_MIB).toFixed(3)} x the ${TARGET_RSS_MIB} MiB target; idle CPU ${cpuPerPhonePct.toFixed(4)} % of a core = ${(cpuPerPhonePct / TARGET_CPU_PCT).toFixed(3)} x the ${TARGET_CPU_PCT} % target; ${((loadedFds - baseFds) / n).toFixed(2)} fds`,
  );

  if (profileS > 0) await idleProfile(agent, join(profileDir, 'idle.cpuprofile'), profileS, `${n} phones`);

  const log = await readFile(logFile, 'utf8');
  const warnings = log.split('\n').filter((l) => /"level":(40|50|60)/.test(l));
  if (warnings.length > 0) {
    console.log(`agent log: ${warnings.length} warnings or errors; first: ${warnings[0]?.slice(0, 300)}`);
  }
  await agent.ask({ op: 'close' });
  await agent.stop();
  await Promise.all([phones.stop(), plane.stop()]);
  await database?.close();
  await rm(dir, { recursive: true, force: true });
  console.log(`[${elapsed()}] done`);
  console.log(
    JSON.stringify({
      bench: 'agent-overhead',
      phones: n,
      rss_per_phone_mib: Number(rssPerPhoneMib.toFixed(3)),
      idle_cpu_per_phone_pct: Number(cpuPerPhonePct.toFixed(4)),
      [`converge_${n}_s`]: Number(convergeS.toFixed(2)),
      rss_ratio_to_target: Number((rssPerPhoneMib / TARGET_RSS_MIB).toFixed(3)),
      cpu_ratio_to_target: Number((cpuPerPhonePct / TARGET_CPU_PCT).toFixed(3)),
      baseline_rss_mib: Number((base.rss / MIB).toFixed(1)),
      baseline_cpu_pct: Number(baseCpuPct.toFixed(3)),
      loaded_rss_mib: Number((loaded.rss / MIB).toFixed(1)),
      loaded_cpu_pct: Number(loadedCpuPct.toFixed(3)),
      heap_per_phone_kib: Number(heapPerPhoneKib.toFixed(1)),
      api_all_running_s: Number(apiRunningS.toFixed(2)),
      converge_cpu_ms_per_phone: Number(((convergeCpuS / n) * 1000).toFixed(2)),
    }),
  );
}

await main();
