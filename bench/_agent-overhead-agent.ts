// The agent side of bench/agent-overhead.ts: the real host agent (startAgent with its ADB pool,
// session, reconciler, spool and sampler), configured from the CPHONE_* environment like the daemon,
// whose runtime drives the phones of the bench's phone process (_agent-overhead-runtime.ts). Run as
// a child process so its RSS and CPU are its own; answers the bench over IPC.
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger, loadConfig, startAgent } from '@cphone/host-agent';
import { RemotePhoneRuntime } from './_agent-overhead-runtime.js';

export type AgentRequest =
  | { op: 'stats'; gc: boolean }
  | { op: 'watch'; count: number }
  | { op: 'profile-start' }
  | { op: 'profile-stop'; file: string }
  | { op: 'close' };

export type AgentReply =
  | { op: 'ready' }
  | {
      op: 'stats';
      rss: number;
      heapUsed: number;
      external: number;
      cpuMicros: number;
      connected: boolean;
      states: Record<string, number>;
      desiredRevision: string;
      usageSequence: number;
      usagePending: number;
    }
  /** Epoch ms: first desired change seen, every watched device RUNNING. */
  | { op: 'watch'; desiredAt: number; runningAt: number }
  | { op: 'profile-start' }
  | { op: 'profile-stop'; file: string }
  | { op: 'close' };

const config = loadConfig(process.env);
// Logs go where the daemon's go (the bench points stdout at a file): their cost is the agent's.
const logger = createLogger(config.logLevel);
const runtime = new RemotePhoneRuntime({
  url: process.env.AGENT_OVERHEAD_PHONES_URL ?? '',
  bootDelayMs: Number(process.env.AGENT_OVERHEAD_BOOT_DELAY_MS ?? 0),
});
await runtime.open();
const agent = await startAgent(config, { logger, runtime });

async function states(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await agent.metrics.devices.get()).values) {
    if (v.value > 0) out[String(v.labels.state)] = v.value;
  }
  return out;
}

/** Polls cheap counters (no per-device work) until `count` devices are RUNNING. */
async function watch(count: number): Promise<Extract<AgentReply, { op: 'watch' }>> {
  const initial = agent.reconciler.desiredRevision;
  let desiredAt = 0;
  for (;;) {
    if (desiredAt === 0 && agent.reconciler.desiredRevision !== initial) desiredAt = Date.now();
    if (((await states()).RUNNING ?? 0) >= count) {
      return { op: 'watch', desiredAt: desiredAt || Date.now(), runningAt: Date.now() };
    }
    await sleep(desiredAt === 0 ? 10 : 50);
  }
}

let profiler: Session | undefined;

/** Starts V8's sampling profiler on the agent's main thread (1 ms interval). */
async function startProfile(): Promise<void> {
  profiler = new Session();
  profiler.connect();
  await profiler.post('Profiler.enable');
  await profiler.post('Profiler.setSamplingInterval', { interval: 1000 });
  await profiler.post('Profiler.start');
}

/** Stops the profiler and writes what it saw as a .cpuprofile file. */
async function stopProfile(file: string): Promise<void> {
  if (profiler === undefined) throw new Error('no profile running');
  const { profile } = await profiler.post('Profiler.stop');
  profiler.disconnect();
  profiler = undefined;
  await writeFile(file, JSON.stringify(profile));
}

async function handle(request: AgentRequest): Promise<AgentReply> {
  switch (request.op) {
    case 'stats': {
      if (request.gc) {
        // Twice, with a pause: V8 hands freed pages back lazily, and RSS is the figure wanted.
        globalThis.gc?.();
        await sleep(500);
        globalThis.gc?.();
      }
      const memory = process.memoryUsage();
      const cpu = process.cpuUsage();
      return {
        op: 'stats',
        rss: memory.rss,
        heapUsed: memory.heapUsed,
        external: memory.external,
        cpuMicros: cpu.user + cpu.system,
        connected: agent.session.connected,
        states: await states(),
        desiredRevision: agent.reconciler.desiredRevision.toString(),
        usageSequence: agent.spool.lastSequence,
        usagePending: agent.spool.pendingCount,
      };
    }
    case 'watch':
      return watch(request.count);
    case 'profile-start':
      await startProfile();
      return { op: 'profile-start' };
    case 'profile-stop':
      await stopProfile(request.file);
      return { op: 'profile-stop', file: request.file };
    case 'close':
      await agent.close();
      await runtime.close();
      return { op: 'close' };
  }
}

process.on('message', (message: AgentRequest & { id: number }) => {
  void handle(message).then(
    (reply) => {
      process.send?.({ ...reply, id: message.id });
      if (reply.op === 'close') process.disconnect();
    },
    (err: unknown) => {
      logger.error({ err }, 'bench request failed');
      process.exit(1);
    },
  );
});
process.once('SIGTERM', () => void agent.close().then(() => process.exit(0)));
process.send?.({ op: 'ready', id: -1 } satisfies AgentReply & { id: number });
