// The control plane of bench/agent-overhead.ts, in a child process so that its CPU and memory are
// not the agent's: the real server (HTTP API and agent gateway over TLS) on PGlite in a temporary
// folder, or on DATABASE_URL. Reports where it listens, its CA and the bootstrap token over IPC;
// the bench then enrolls the host and creates the devices through the public API.

import { loadConfig, startControlPlane } from '@cphone/control-plane';
import pino from 'pino';

export type PlaneReply =
  | { op: 'ready'; httpUrl: string; grpcPort: number; caPem: string; token: string }
  | { op: 'stats'; rss: number; cpuMicros: number };

const env = process.env;
const plane = await startControlPlane(
  loadConfig(
    {},
    {
      dataDir: env.AGENT_OVERHEAD_PLANE_DIR ?? '.data/agent-overhead',
      databaseUrl: env.DATABASE_URL || undefined,
      httpPort: 0,
      grpcHost: '127.0.0.1',
      grpcPort: 0,
      // The benchmark drives the API far above a customer's default rate limits.
      rateLimitKeyRps: 1_000_000,
      rateLimitKeyBurst: 1_000_000,
      rateLimitTenantRps: 1_000_000,
      rateLimitTenantBurst: 1_000_000,
    },
  ),
  { logger: pino({ level: env.AGENT_OVERHEAD_PLANE_LOG_LEVEL ?? 'silent' }) },
);

process.on('message', (message: { op: 'stats'; id: number }) => {
  if (message.op !== 'stats') return;
  const cpu = process.cpuUsage();
  const reply: PlaneReply = { op: 'stats', rss: process.memoryUsage().rss, cpuMicros: cpu.user + cpu.system };
  process.send?.({ ...reply, id: message.id });
});
process.once('SIGTERM', () => void plane.close().then(() => process.exit(0)));
process.send?.({
  op: 'ready',
  httpUrl: plane.httpUrl,
  grpcPort: plane.grpcPort,
  caPem: plane.deps.gateway.caPem ?? '',
  token: plane.bootstrapToken ?? '',
  id: -1,
} satisfies PlaneReply & { id: number });
