// A short fuzz pass of the public API and of the agent stream through a real control plane; the
// long one is `npm run bench -- fuzz`. The seed is fixed so a run is repeatable; FUZZ_SEED picks
// another, and a failure prints the seed and input number that replay it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createAgentClient, TestAgent } from '../gateway/test-agent.js';
import { startTestControlPlane, type TestControlPlane } from '../test-control-plane.js';
import { type AgentFuzzReport, fuzzAgentStreams } from './agent-fuzz.js';
import { type FuzzReport, fuzzApi } from './api-fuzz.js';
import { createFuzzFixture, type FuzzFixture } from './fixture.js';
import { seedFrom } from './random.js';

const SEED = seedFrom(process.env.FUZZ_SEED, 20_261_201);
const API_INPUTS = 2000;
const AGENT_STREAMS = 300;
const HELLO_TIMEOUT_MS = 1000;

let testPlane: TestControlPlane;
let fixture: FuzzFixture;

before(async () => {
  testPlane = await startTestControlPlane(
    { grpcHost: '127.0.0.1' },
    { gateway: { helloTimeoutMs: HELLO_TIMEOUT_MS } },
  );
  fixture = await createFuzzFixture(testPlane.plane);
});

after(() => testPlane.close());

function describeReport(name: string, report: FuzzReport): string {
  const failures = report.failures.length + report.moreFailures;
  return `${name}: seed ${SEED}, ${report.inputs} inputs, ${failures} failures, ${Math.round(report.elapsedMs)} ms, codes ${JSON.stringify(report.codes)} (replay: FUZZ_SEED=${SEED})`;
}

/** The server still answers its health check and an ordinary call. */
async function stillServing() {
  const { httpUrl } = testPlane.plane;
  assert.equal((await fetch(`${httpUrl}/healthz`)).status, 200);
  const response = await fetch(`${httpUrl}/cphone.api.v1.TenantService/ListTenants`, {
    method: 'POST',
    body: '{}',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${fixture.tokens[0]}` },
  });
  assert.equal(response.status, 200, await response.text());
}

test('the public API answers every fuzzed call without INTERNAL, UNKNOWN or 5xx, in time', async (t) => {
  const report = await fuzzApi({
    url: testPlane.plane.httpUrl,
    seed: SEED,
    inputs: API_INPUTS,
    tokens: fixture.tokens,
    pool: fixture.pool,
  });
  t.diagnostic(describeReport('api fuzz', report));
  assert.equal(report.inputs, API_INPUTS);
  assert.deepEqual(report.failures, []);
  await stillServing();
});

describe('the agent stream under fuzzed streams', () => {
  let report: AgentFuzzReport;
  before(async () => {
    report = await fuzzAgentStreams(
      {
        port: testPlane.plane.grpcPort,
        caPem: testPlane.plane.deps.gateway.caPem ?? '',
        seed: SEED,
        streams: AGENT_STREAMS,
        hosts: fixture.agentHosts,
        revoked: fixture.revokedHost,
        helloTimeoutMs: HELLO_TIMEOUT_MS,
      },
      fixture.pool,
    );
  });

  const unclosed = (r: AgentFuzzReport) =>
    r.failures.filter((f) => f.reason.includes('without a valid hello'));

  test('every stream ends with a status, and no stream that failed its Hello is welcomed', (t) => {
    t.diagnostic(describeReport('agent fuzz', report));
    t.diagnostic(`${report.streams} streams, ${report.messages} messages`);
    assert.equal(report.streams, AGENT_STREAMS);
    assert.deepEqual(
      report.failures.filter((f) => !unclosed(report).includes(f)),
      [],
    );
  });

  test('every stream that never completes a valid Hello is closed within the hello timeout', () => {
    assert.deepEqual(unclosed(report), []);
  });

  test('afterwards a valid agent is still welcomed and the API still serves', async () => {
    const client = createAgentClient(testPlane.plane.grpcPort, testPlane.plane.deps.gateway.caPem ?? '');
    try {
      const [host] = fixture.agentHosts;
      assert.ok(host);
      const agent = TestAgent.connect(client, host);
      assert.equal((await agent.next('welcome')).hostId, host.hostId);
      agent.cancel();
    } finally {
      client.close();
    }
    await stillServing();
  });
});
