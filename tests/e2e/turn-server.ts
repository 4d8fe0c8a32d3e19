// Debian's coturn (`turnserver`) as a child process for a test file: loopback only, UDP only, the
// shared-secret "REST API" auth the control plane's TURN credentials are made for. It reads no
// config file (-n) and keeps its pid file and user database in its own temporary dir, so it touches
// nothing of the package's own set-up (whose service stays off: scripts/setup-system.sh).
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@cphone/proto/testing';

export interface TurnServer {
  /** `turn:127.0.0.1:<port>?transport=udp` */
  readonly url: string;
  readonly port: number;
  /** The static-auth-secret the server checks credentials with. */
  readonly secret: string;
  stop(): Promise<void>;
}

export interface TurnServerOptions {
  /** Default: 32 random bytes in hex. */
  secret?: string;
  /** Default: cphone.test */
  realm?: string;
}

/** A UDP port nothing holds right now: bound on 127.0.0.1 port 0, then released. */
async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', resolve);
  });
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}

/** One STUN Binding request (RFC 5389); resolves when a Binding success response comes back. */
function stunBinding(port: number, timeoutMs = 500): Promise<void> {
  const socket = createSocket('udp4');
  const transactionId = randomBytes(12);
  const request = Buffer.alloc(20);
  request.writeUInt16BE(0x0001, 0);
  request.writeUInt16BE(0, 2);
  request.writeUInt32BE(0x2112a442, 4);
  transactionId.copy(request, 8);
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error('no STUN answer')), timeoutMs);
    const done = (error?: Error) => {
      clearTimeout(timer);
      socket.close();
      if (error) reject(error);
      else resolve();
    };
    socket.on('error', done);
    socket.on('message', (m) => {
      if (m.length >= 20 && m.readUInt16BE(0) === 0x0101 && m.subarray(8, 20).equals(transactionId)) done();
    });
    socket.send(request, port, '127.0.0.1');
  });
}

/** Starts turnserver on a free loopback port and waits until it answers STUN. */
export async function startTurnServer({
  secret = randomBytes(32).toString('hex'),
  realm = 'cphone.test',
}: TurnServerOptions = {}): Promise<TurnServer> {
  const dir = await mkdtemp(join(tmpdir(), 'cphone-turn-'));
  const port = await freeUdpPort();
  // Relay ports from a window of 100 at a random place, so servers of test files running at once
  // rarely share ports.
  const minPort = 40_000 + Math.floor(Math.random() * 200) * 100;
  const child: ChildProcess = spawn(
    'turnserver',
    [
      '-n',
      `--listening-ip=127.0.0.1`,
      `--relay-ip=127.0.0.1`,
      `--listening-port=${port}`,
      `--min-port=${minPort}`,
      `--max-port=${minPort + 99}`,
      '--use-auth-secret',
      `--static-auth-secret=${secret}`,
      `--realm=${realm}`,
      '--no-tcp',
      '--no-tls',
      '--no-dtls',
      '--no-cli',
      // mediasoup listens on 127.0.0.1 in tests, a peer coturn refuses unless told otherwise.
      '--allow-loopback-peers',
      `--pidfile=${join(dir, 'turnserver.pid')}`,
      `--userdb=${join(dir, 'turndb')}`,
      '--log-file=stdout',
      '--simple-log',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  // Shown if it fails to start (it block-buffers its log on a pipe, so only its exit flushes it).
  let output = '';
  const append = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let exited: string | undefined;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = `exited (${signal ?? code})`;
      resolve();
    });
    child.once('error', (error) => {
      exited = `failed to start: ${error.message}`;
      resolve();
    });
  });
  const stop = async () => {
    if (exited === undefined) {
      child.kill('SIGTERM');
      await exit;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      `turnserver on 127.0.0.1:${port} to answer STUN`,
      async () => {
        if (exited !== undefined) return { exited, output };
        await stunBinding(port);
        return { answered: true };
      },
      (v) => {
        if ('exited' in v) throw new Error(`turnserver ${v.exited}:\n${v.output}`);
        return v.answered;
      },
      { timeoutMs: 10_000 },
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url: `turn:127.0.0.1:${port}?transport=udp`,
    port,
    secret,
    stop,
  };
}
