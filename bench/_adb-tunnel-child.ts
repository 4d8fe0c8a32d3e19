// Two processes of bench/adb-tunnel.ts, on the user's side of the path:
//   tunnel  the CLI's tunnel library: CreateAdbTunnel with an API key over the public API, a local
//           port, WebSockets to the agent's endpoint
//   shells  an ADB client (@yume-chan/adb, no adb server) timing shell round trips to an address
// Forked by the bench with one role each; requests over IPC (see _child.ts).

import { createConnectTransport } from '@connectrpc/connect-node';
import { openAdbTunnel } from '@cphone/cli/adb-tunnel';
import { connectAdbTcp, FileCredentialStore } from '@cphone/host-agent';
import { Adb, AdbDaemonTransport } from '@yume-chan/adb';

export type AdbTunnelChildRequest =
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
  | { op: 'listening'; port: number }
  | { op: 'times'; ms: number[] }
  | { op: 'failed'; message: string };
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
    case 'tunnel': {
      const tunnel = await openAdbTunnel({
        // As the CLI's own API client (cli/src/lib/api.ts) makes it: Connect over HTTP/1.1, the key as Bearer.
        transport: createConnectTransport({
          baseUrl: r.apiUrl,
          httpVersion: '1.1',
          interceptors: [
            (next) => (req) => {
              req.header.set('authorization', `Bearer ${r.apiKey}`);
              return next(req);
            },
          ],
        }),
        deviceId: r.deviceId,
        ...(r.ca !== undefined ? { ca: r.ca } : {}),
        onError: (e) => console.error('tunnel:', e.message),
      });
      return { op: 'listening', port: tunnel.port };
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
