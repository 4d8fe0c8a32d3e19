// npm run bench -- adb-tunnel [--mib 64] [--rounds 3] [--shells 300] [--tls on|off]
// Remote ADB through the platform against ADB straight to the same virtual phone, in one run, on
// loopback. The tunnel path is the one a user's request takes: CreateAdbTunnel through the public
// Connect API with an API key, the CLI library's local port (cli/src/adb-tunnel), a WebSocket to the
// agent's stream endpoint (WSS with its generated CA by default; --tls off is the embedded default's
// plain ws on loopback), the agent's TCP connection to the phone's adbd. Real sockets throughout.
//   tunnel_mb_per_s / direct_mb_per_s   Debian's `adb push` of a --mib MiB file, best of --rounds
//                                       (MB = 10^6 bytes), through the tunnel / straight to the phone
//   ratio                               tunnel / direct
//   shell_rtt_p50_ms / _p99_ms          one shell command (`echo`) with its answer, through the
//                                       tunnel, by @yume-chan/adb on the local port (no adb server)
//   direct_shell_rtt_p50_ms / _p99_ms   the same straight to the phone's adbd
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openAdbTunnel } from '@cphone/cli/adb-tunnel';
import { connectAdbTcp, FileCredentialStore, type VirtualPhone } from '@cphone/host-agent';
import { DebianAdb } from '@cphone/host-agent/testing';
import { waitFor } from '@cphone/proto/testing';
import { Adb, AdbDaemonTransport } from '@yume-chan/adb';
import { arg } from './_args.js';
import { ms, percentile } from './_sfu-media.js';
import { startStack } from './_sfu-stack.js';

const MIB = arg('mib', 64);
const ROUNDS = arg('rounds', 3);
const SHELLS = arg('shells', 300);
const tlsAt = process.argv.indexOf('--tls');
const TLS = tlsAt < 0 || process.argv[tlsAt + 1] !== 'off';
const FIXTURES = new URL('../host-agent/fixtures', import.meta.url).pathname;

const phones = new Map<string, VirtualPhone>();
const stack = await startStack({
  videoFixturesDir: FIXTURES,
  maxViewers: 1,
  agentEnv: TLS ? {} : { CPHONE_STREAM_TLS: 'off' },
  phones,
});
const work = await mkdtemp(join(tmpdir(), 'cphone-bench-adb-tunnel-'));
const adb = new DebianAdb();
try {
  const deviceId = await stack.runningPhone('bench-adb');
  const phone = phones.get(deviceId);
  if (!phone) throw new Error(`no virtual phone ${deviceId}`);
  const tunnel = await openAdbTunnel({
    devices: stack.devices,
    deviceId,
    ...(TLS ? { ca: await readFile(join(stack.agentDataDir, 'stream-tls', 'ca.pem'), 'utf8') } : {}),
    onError: (e) => console.error('tunnel:', e.message),
  });
  const direct = phone.address;
  for (const serial of [tunnel.address, direct]) {
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
    rates.tunnel.push(await push(tunnel.address));
  }
  const best = (v: number[]) => Math.max(...v);

  const shellTimes = async (host: string, port: number, serial: string) => {
    const { connection } = await connectAdbTcp(host, port);
    const client = new Adb(
      await AdbDaemonTransport.authenticate({
        serial,
        connection,
        credentialStore: await FileCredentialStore.open({ dataDir: join(work, 'yume') }),
      }),
    );
    try {
      const shell = client.subprocess.shellProtocol;
      if (!shell) throw new Error('the phone offers no shell v2');
      const times: number[] = [];
      for (let i = 0; i < SHELLS + 20; i++) {
        const started = performance.now();
        const { stdout } = await shell.spawnWaitText(`echo ${i}`);
        const took = performance.now() - started;
        if (stdout !== `${i}\n`) throw new Error(`echo ${i} answered ${JSON.stringify(stdout)}`);
        if (i >= 20) times.push(took); // the first ones warm up the JIT and the sockets
      }
      return times;
    } finally {
      await client.close();
    }
  };
  const rtt = { direct: [] as number[], tunnel: [] as number[] };
  for (let i = 0; i < 2; i++) {
    rtt.direct.push(...(await shellTimes(phone.host, phone.port, direct)));
    rtt.tunnel.push(...(await shellTimes('127.0.0.1', tunnel.port, tunnel.address)));
  }

  const figures = {
    tunnel_mb_per_s: Number(best(rates.tunnel).toFixed(1)),
    direct_mb_per_s: Number(best(rates.direct).toFixed(1)),
    ratio: Number((best(rates.tunnel) / best(rates.direct)).toFixed(3)),
    shell_rtt_p50_ms: Number(ms(percentile(rtt.tunnel, 50))),
    shell_rtt_p99_ms: Number(ms(percentile(rtt.tunnel, 99))),
    direct_shell_rtt_p50_ms: Number(ms(percentile(rtt.direct, 50))),
    direct_shell_rtt_p99_ms: Number(ms(percentile(rtt.direct, 99))),
  };
  console.log(
    `endpoint ${TLS ? 'wss (generated CA)' : 'plain ws on loopback'}; ${MIB} MiB pushes, ${ROUNDS} rounds`,
  );
  console.log(
    `adb push   tunnel ${rates.tunnel.map((r) => r.toFixed(1)).join(', ')} MB/s; direct ${rates.direct.map((r) => r.toFixed(1)).join(', ')} MB/s`,
  );
  console.log(
    `shell echo tunnel p50 ${figures.shell_rtt_p50_ms} ms p99 ${figures.shell_rtt_p99_ms} ms; direct p50 ${figures.direct_shell_rtt_p50_ms} ms p99 ${figures.direct_shell_rtt_p99_ms} ms (n ${rtt.tunnel.length} each)`,
  );
  console.log(JSON.stringify(figures));
  await tunnel.close();
} finally {
  await adb.dispose();
  await stack.close();
  await rm(work, { recursive: true, force: true });
}
