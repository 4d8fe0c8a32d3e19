// npm run bench -- adb-tunnel [--mib 64] [--rounds 3] [--shells 300] [--tls on|off]
// Remote ADB through the platform against ADB straight to the same virtual phone, in one run, on
// loopback. The tunnel path is the one a user's request takes: CreateAdbTunnel through the public
// Connect API with a tenant's API key, the CLI library's local port (cli/src/adb-tunnel) in a process
// of its own, a WebSocket to the agent's stream endpoint (WSS with its generated CA by default; --tls
// off is the embedded default's plain ws on loopback), the agent's TCP connection to the phone's
// adbd. The phone runs in a process of its own too (a real phone is a container beside the agent),
// and so does the shell client; this process holds the control plane and the agent. Real sockets
// throughout.
//   tunnel_mb_per_s / direct_mb_per_s   Debian's `adb push` of a --mib MiB file, best of --rounds
//                                       (MB = 10^6 bytes), through the tunnel / straight to the phone
//   ratio                               tunnel / direct
//   shell_rtt_p50_ms / _p99_ms          one shell command (`echo`) with its answer, through the
//                                       tunnel, by @yume-chan/adb on the local port (no adb server)
//   direct_shell_rtt_p50_ms / _p99_ms   the same straight to the phone's adbd
//   added_rtt_p50_ms                    what the tunnel adds to a round trip (p50 tunnel - direct)
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@connectrpc/connect';
import { bearerTransport } from '@cphone/control-plane';
import { DebianAdb } from '@cphone/host-agent/testing';
import { ApiKeyService, Role } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import type { AdbTunnelChildReply, AdbTunnelChildRequest } from './_adb-tunnel-child.js';
import { arg } from './_args.js';
import { Child } from './_child.js';
import { ms, percentile } from './_sfu-media.js';
import { startStack } from './_sfu-stack.js';

const MIB = arg('mib', 64);
const ROUNDS = arg('rounds', 3);
const SHELLS = arg('shells', 300);
const tlsAt = process.argv.indexOf('--tls');
const TLS = tlsAt < 0 || process.argv[tlsAt + 1] !== 'off';
const FIXTURES = new URL('../host-agent/fixtures', import.meta.url).pathname;

type Reply<K extends AdbTunnelChildReply['op']> = Extract<AdbTunnelChildReply, { op: K }>;
const start = (name: string) =>
  Child.start<AdbTunnelChildRequest, AdbTunnelChildReply>(name, './_adb-tunnel-child.ts');
async function ask<K extends AdbTunnelChildReply['op']>(
  child: Child<AdbTunnelChildRequest, AdbTunnelChildReply>,
  request: AdbTunnelChildRequest,
  op: K,
): Promise<Reply<K>> {
  const reply = await child.ask(request);
  if (reply.op !== op) throw new Error(`${child.name}: ${reply.op === 'failed' ? reply.message : reply.op}`);
  return reply as Reply<K>;
}

const children = { phones: start('phones'), tunnel: start('tunnel'), shells: start('shell client') };
await Promise.all(Object.values(children).map((c) => c.ready()));
const phonePorts = new Map<string, number>();
const stack = await startStack({
  videoFixturesDir: FIXTURES,
  maxViewers: 1,
  agentEnv: TLS ? {} : { CPHONE_STREAM_TLS: 'off' },
  launch: async (o) => {
    const { port } = await ask(
      children.phones,
      {
        op: 'phone',
        serial: o.serial,
        port: o.port,
        bootDelayMs: o.bootDelayMs,
        screen: { width: o.screen.width, height: o.screen.height, dpi: o.screen.dpi },
        videoFixturesDir: FIXTURES,
        ...(o.dataDir !== undefined ? { dataDir: o.dataDir } : {}),
      },
      'listening',
    );
    phonePorts.set(o.serial, port);
    return {
      port,
      close: async () => {
        await ask(children.phones, { op: 'close-phone', serial: o.serial }, 'closed');
      },
    };
  },
});
const work = await mkdtemp(join(tmpdir(), 'cphone-bench-adb-tunnel-'));
const adb = new DebianAdb();
try {
  const deviceId = await stack.runningPhone('bench-adb');
  const phonePort = phonePorts.get(deviceId);
  if (phonePort === undefined) throw new Error(`no virtual phone ${deviceId}`);
  const { secret: apiKey } = await createClient(
    ApiKeyService,
    bearerTransport(stack.plane.httpUrl, stack.plane.bootstrapToken ?? ''),
  ).createApiKey({ tenantId: stack.tenantId, role: Role.TENANT_USER, displayName: 'bench developer' });
  const ca = TLS ? await readFile(join(stack.agentDataDir, 'stream-tls', 'ca.pem'), 'utf8') : undefined;
  const tunnel = await ask(
    children.tunnel,
    { op: 'tunnel', apiUrl: stack.plane.httpUrl, apiKey, deviceId, ...(ca !== undefined ? { ca } : {}) },
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

  const file = join(work, 'push.bin');
  await writeFile(file, randomBytes(MIB << 20));
  const push = async (serial: string) => {
    const started = performance.now();
    await adb.text(['-s', serial, 'push', file, '/data/local/tmp/push.bin'], { timeoutMs: 300_000 });
    return (MIB * 1.048576) / ((performance.now() - started) / 1000);
  };
  const rates = { tunnel: [] as number[], direct: [] as number[] };
  // Alternated, so a busy moment of the machine falls on both paths alike.
  for (let i = 0; i < ROUNDS; i++) {
    rates.direct.push(await push(direct));
    rates.tunnel.push(await push(viaTunnel));
  }
  const best = (v: number[]) => Math.max(...v);

  const shellTimes = async (port: number, serial: string) =>
    (
      await ask(
        children.shells,
        {
          op: 'shells',
          host: '127.0.0.1',
          port,
          serial,
          count: SHELLS,
          warmup: 20,
          keysDir: join(work, 'yume'),
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
  await stack.close();
  for (const child of Object.values(children)) await child.stop();
  await rm(work, { recursive: true, force: true });
}
