// The long fuzz run: `npm run bench -- fuzz [--inputs 1000000] [--seed N] [--concurrency 16]
// [--agent-share 0.1]`. The control plane runs in a child process; the agent stream takes about
// agent-share of the inputs, the public API the rest (see control-plane/src/fuzz/). An input is one
// thing the server had to handle: an API call, an agent stream opened, or a message on one. Prints
// progress, the failures grouped, and ends with one JSON line. Never fails on a time.
import {
  createAgentClient,
  type FuzzReport,
  fuzzAgentStreams,
  fuzzApi,
  seedFrom,
  TestAgent,
} from '@cphone/control-plane/testing';
import { arg } from './_args.js';
import { Child } from './_child.js';
import type { FuzzPlaneReply, FuzzPlaneRequest } from './_fuzz-control-plane.js';

const INPUTS = arg('inputs', 1_000_000);
const CONCURRENCY = arg('concurrency', 16);
const AGENT_SHARE = arg('agent-share', 0.1);
const HELLO_TIMEOUT_MS = 1000;
const seedArg = process.argv.indexOf('--seed');
const SEED = seedFrom(seedArg >= 0 ? process.argv[seedArg + 1] : undefined);
// Inputs per agent stream on average (the stream, then its messages), to size the agent part.
const INPUTS_PER_STREAM = 3.3;

console.log(`fuzz: seed ${SEED}, ${INPUTS} inputs, concurrency ${CONCURRENCY} (replay with --seed ${SEED})`);
const child = Child.start<FuzzPlaneRequest, FuzzPlaneReply>('control plane', './_fuzz-control-plane.ts', {
  env: { FUZZ_HELLO_TIMEOUT_MS: String(HELLO_TIMEOUT_MS) },
});
await child.ready();
const plane = (await child.ask({ op: 'ready' })) as Extract<FuzzPlaneReply, { op: 'ready' }>;
const { fixture } = plane;
const started = performance.now();
let failureCount = 0;
const kinds = new Map<string, { count: number; example: number }>();
const collect = (report: FuzzReport) => {
  failureCount += report.failures.length + report.moreFailures;
  for (const [kind, { count, example }] of Object.entries(report.kinds)) {
    const seen = kinds.get(kind);
    if (seen) seen.count += count;
    else kinds.set(kind, { count, example });
  }
};
const codes: Record<string, number> = {};
const tally = (from: Record<string, number>, prefix: string) => {
  for (const [code, n] of Object.entries(from))
    codes[`${prefix}${code}`] = (codes[`${prefix}${code}`] ?? 0) + n;
};
const rate = (n: number) => Math.round(n / ((performance.now() - started) / 1000));

const streams = Math.round((INPUTS * AGENT_SHARE) / INPUTS_PER_STREAM);
const agent = await fuzzAgentStreams(
  {
    port: plane.grpcPort,
    caPem: plane.caPem,
    seed: SEED,
    streams,
    hosts: fixture.agentHosts,
    revoked: fixture.revokedHost,
    helloTimeoutMs: HELLO_TIMEOUT_MS,
    concurrency: 64,
    keep: 20,
    onProgress: (n) => {
      if (n % 5000 === 0) console.log(`  agent streams ${n}/${streams}`);
    },
  },
  fixture.pool,
);
collect(agent);
tally(agent.codes, 'agent ');
console.log(
  `agent stream: ${agent.streams} streams, ${agent.messages} messages, ${agent.inputs} inputs in ${Math.round(agent.elapsedMs)} ms`,
);

const apiInputs = Math.max(0, INPUTS - agent.inputs);
const CHUNK = 50_000;
let api = 0;
for (let first = 0; first < apiInputs; first += CHUNK) {
  const report = await fuzzApi({
    url: plane.httpUrl,
    seed: SEED,
    first,
    inputs: Math.min(CHUNK, apiInputs - first),
    tokens: fixture.tokens,
    pool: fixture.pool,
    concurrency: CONCURRENCY,
    keep: 20,
  });
  api += report.inputs;
  collect(report);
  tally(report.codes, 'api ');
  console.log(
    `  api ${api}/${apiInputs}, ${failureCount} failures so far, ${rate(agent.inputs + api)} inputs/s`,
  );
}

// Still serving: health, an ordinary call, and a valid agent welcomed.
const health = await fetch(`${plane.httpUrl}/healthz`).then((r) => r.status, String);
const ordinary = await fetch(`${plane.httpUrl}/cphone.api.v1.TenantService/ListTenants`, {
  method: 'POST',
  body: '{}',
  headers: { 'content-type': 'application/json', authorization: `Bearer ${fixture.tokens[0]}` },
}).then((r) => r.status, String);
const client = createAgentClient(plane.grpcPort, plane.caPem);
const host = fixture.agentHosts[0];
const welcomed = host
  ? await TestAgent.connect(client, host)
      .next('welcome', 10_000)
      .then(
        () => true,
        () => false,
      )
  : false;
client.close();
const alive = health === 200 && ordinary === 200 && welcomed;
if (!alive) {
  failureCount++;
  const reason = `healthz ${health}, ListTenants ${ordinary}, agent welcomed ${welcomed}`;
  kinds.set(`after the run | ${reason}`, { count: 1, example: -1 });
}
const seconds = (performance.now() - started) / 1000;
await child.ask({ op: 'stop' });

console.log(`failures: ${failureCount}, by kind (input number of the first example):`);
for (const [kind, { count, example }] of [...kinds].sort((a, b) => b[1].count - a[1].count)) {
  console.log(`  ${count} x ${kind}   e.g. input ${example}`);
}
const inputs = agent.inputs + api;
console.log(
  JSON.stringify({
    inputs,
    failures: failureCount,
    seed: SEED,
    seconds: Math.round(seconds),
    inputs_per_s: Math.round(inputs / seconds),
    api_calls: api,
    agent_streams: agent.streams,
    agent_messages: agent.messages,
    still_serving: alive,
    codes,
  }),
);
