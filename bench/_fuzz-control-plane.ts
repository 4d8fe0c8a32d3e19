// The control-plane side of bench/fuzz.ts, in a child process so the fuzzer and the server do not
// share one event loop: a fresh plane (scratch PostgreSQL database with DATABASE_URL, else PGlite)
// with the fuzz fixture, answering over IPC.

import { createFuzzFixture, type FuzzFixture, startTestControlPlane } from '@cphone/control-plane/testing';
import pino from 'pino';

export type FuzzPlaneRequest = { op: 'ready' } | { op: 'stop' };
export type FuzzPlaneReply =
  | { op: 'ready'; httpUrl: string; grpcPort: number; caPem: string; fixture: FuzzFixture }
  | { op: 'stopped' };

const helloTimeoutMs = Number(process.env.FUZZ_HELLO_TIMEOUT_MS ?? 1000);
const testPlane = await startTestControlPlane(
  { grpcHost: '127.0.0.1' },
  { logger: pino({ level: process.env.FUZZ_LOG_LEVEL ?? 'silent' }), gateway: { helloTimeoutMs } },
);
const { plane } = testPlane;
const fixture = await createFuzzFixture(plane);

process.on('message', async (m: FuzzPlaneRequest & { id: number }) => {
  if (m.op === 'ready') {
    const caPem = plane.deps.gateway.caPem ?? '';
    process.send?.({
      op: 'ready',
      id: m.id,
      httpUrl: plane.httpUrl,
      grpcPort: plane.grpcPort,
      caPem,
      fixture,
    });
  } else {
    await testPlane.close();
    process.send?.({ op: 'stopped', id: m.id });
    process.exit(0);
  }
});
process.send?.({ op: 'ready', id: -1 });
