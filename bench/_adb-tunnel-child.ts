// The processes of bench/adb-tunnel.ts besides the platform's own, so that no two hops of the path
// share an event loop (as on a real user's machine, a real host and a real phone):
//   phone   the virtual phones (the sim runtime's launcher in the agent asks this process for them)
//   tunnel  the CLI's tunnel library: CreateAdbTunnel with an API key over the public API, a local
//           port, WebSockets to the agent's endpoint
//   shells  an ADB client (@yume-chan/adb, no adb server) timing shell round trips to an address
// Forked by the bench with one role each; requests over IPC (see _child.ts).
import { openAdbTunnel } from '@cphone/cli/adb-tunnel';
import { bearerTransport } from '@cphone/control-plane';
import { connectAdbTcp, FileCredentialStore, startVirtualPhone, type VirtualPhone } from '@cphone/host-agent';
import { Adb, AdbDaemonTransport } from '@yume-chan/adb';

export type AdbTunnelChildRequest =
  | {
      op: 'phone';
      serial: string;
      port: number;
      bootDelayMs: number;
      screen: { width: number; height: number; dpi: number };
      videoFixturesDir: string;
      dataDir?: string;
    }
  | { op: 'close-phone'; serial: string }
  | { op: 'tunnel'; apiUrl: string; apiKey: string; deviceId: string; ca?: string }
  | {
      op: 'shells';
      host: string;
      port: number;
      serial: string;
      count: number;
      warmup: number;
      keysDir: string;
    };

export type AdbTunnelChildReply =
  | { op: 'ready' }
  | { op: 'listening'; host: string; port: number }
  | { op: 'closed' }
  | { op: 'times'; ms: number[] }
  | { op: 'failed'; message: string };

const phones = new Map<string, VirtualPhone>();

/** Shell v2 `echo i` round trips, each timed from the request to its whole answer. */
async function shells(r: Extract<AdbTunnelChildRequest, { op: 'shells' }>): Promise<number[]> {
  const { connection } = await connectAdbTcp(r.host, r.port);
  const client = new Adb(
    await AdbDaemonTransport.authenticate({
      serial: r.serial,
      connection,
      credentialStore: await FileCredentialStore.open({ dataDir: r.keysDir }),
    }),
  );
  try {
    const shell = client.subprocess.shellProtocol;
    if (!shell) throw new Error('the phone offers no shell v2');
    const times: number[] = [];
    for (let i = 0; i < r.warmup + r.count; i++) {
      const started = performance.now();
      const { stdout } = await shell.spawnWaitText(`echo ${i}`);
      const took = performance.now() - started;
      if (stdout !== `${i}\n`) throw new Error(`echo ${i} answered ${JSON.stringify(stdout)}`);
      if (i >= r.warmup) times.push(took);
    }
    return times;
  } finally {
    await client.close();
  }
}

async function handle(r: AdbTunnelChildRequest): Promise<AdbTunnelChildReply> {
  switch (r.op) {
    case 'phone': {
      const phone = await startVirtualPhone({
        host: '127.0.0.1',
        port: r.port,
        serial: r.serial,
        bootDelayMs: r.bootDelayMs,
        screen: r.screen,
        videoFixturesDir: r.videoFixturesDir,
        ...(r.dataDir !== undefined ? { dataDir: r.dataDir } : {}),
      });
      phones.set(r.serial, phone);
      return { op: 'listening', host: phone.host, port: phone.port };
    }
    case 'close-phone':
      await phones.get(r.serial)?.close();
      phones.delete(r.serial);
      return { op: 'closed' };
    case 'tunnel': {
      const tunnel = await openAdbTunnel({
        transport: bearerTransport(r.apiUrl, r.apiKey),
        deviceId: r.deviceId,
        ...(r.ca !== undefined ? { ca: r.ca } : {}),
        onError: (e) => console.error('tunnel:', e.message),
      });
      return { op: 'listening', host: '127.0.0.1', port: tunnel.port };
    }
    case 'shells':
      return { op: 'times', ms: await shells(r) };
  }
}

process.on('message', (m: AdbTunnelChildRequest & { id: number }) => {
  handle(m).then(
    (reply) => process.send?.({ ...reply, id: m.id }),
    (error: unknown) => process.send?.({ op: 'failed', message: String(error), id: m.id }),
  );
});
process.once('SIGTERM', () => process.exit(0));
process.send?.({ op: 'ready', id: -1 });
