// Fuzzes the agent stream (gRPC over TLS) as an attacker or a broken agent would: streams that
// never speak, Hellos with made-up or damaged identities, other messages first, undecodable frames,
// and valid Hellos followed by mutated message sequences. Invariants: a stream that never completes
// a valid Hello is closed by the server with a status within the hello timeout (plus a grace for
// the machine), and every stream, once the client half-closes, gets its status within the grace.
import { create, fromBinary, type MessageInitShape, toBinary } from '@bufbuild/protobuf';
import { agentv1 } from '@cphone/proto';
import * as grpc from '@grpc/grpc-js';
import { CONTROL_PLANE_VERSION } from '../gateway/hello.js';
import { emptyReport, type FuzzReport, recordFailure } from './api-fuzz.js';
import { generate, type Pool } from './messages.js';
import { mutateBytes } from './mutations.js';
import { createRandom, type Random } from './random.js';

const CONNECT_PATH = '/cphone.agent.v1.AgentService/Connect';

export interface AgentIdentity {
  hostId: string;
  credential: string;
}

export interface AgentFuzzOptions {
  /** The gateway's port and the CA its certificate chains to. */
  port: number;
  caPem: string;
  seed: number;
  streams: number;
  /** Hosts whose credentials are valid (their streams may complete a Hello). */
  hosts: readonly AgentIdentity[];
  /** An enrolled host whose credential is revoked. */
  revoked: AgentIdentity;
  /** The gateway's hello timeout. */
  helloTimeoutMs: number;
  /** Slack on top of every bound, for a loaded machine. Default 5000 ms. */
  graceMs?: number;
  concurrency?: number;
  keep?: number;
  onProgress?: (streams: number) => void;
}

export interface AgentFuzzReport extends FuzzReport {
  streams: number;
  messages: number;
}

type Kind = 'silent' | 'bad hello' | 'other first' | 'garbage' | 'valid then junk';

interface Plan {
  kind: Kind;
  frames: Uint8Array[];
  what: string;
}

const hello = (init: MessageInitShape<typeof agentv1.HelloSchema>) =>
  toBinary(
    agentv1.AgentMessageSchema,
    create(agentv1.AgentMessageSchema, {
      body: {
        case: 'hello',
        value: { protocolVersion: agentv1.ProtocolVersion.V1, agentVersion: CONTROL_PLANE_VERSION, ...init },
      },
    }),
  );

/** A Hello that must not be accepted: someone else's, revoked, damaged or made-up identity. */
function badHello(random: Random, options: AgentFuzzOptions): { frame: Uint8Array; how: string } {
  const valid = random.pick(options.hosts);
  const other = random.pick(options.hosts.filter((h) => h !== valid).concat(options.revoked));
  const nul = (s: string, end = s.length) => {
    const at = random.int(end + 1);
    return `${s.slice(0, at)}\0${s.slice(at)}`;
  };
  const variants: [string, MessageInitShape<typeof agentv1.HelloSchema>][] = [
    ['revoked credential', options.revoked],
    ['another host’s credential', { hostId: valid.hostId, credential: other.credential }],
    ['wrong secret', { hostId: valid.hostId, credential: `${valid.credential.split('.')[0]}.cph_wrong` }],
    ['made-up credential', { hostId: valid.hostId, credential: 'hcred_nope.cph_nope' }],
    ['empty identity', {}],
    [
      'NUL in the credential id',
      { hostId: valid.hostId, credential: nul(valid.credential, valid.credential.indexOf('.')) },
    ],
    ['NUL in the credential', { hostId: valid.hostId, credential: nul(valid.credential) }],
    ['NUL in the host id', { hostId: nul(valid.hostId), credential: valid.credential }],
    ['huge credential', { hostId: valid.hostId, credential: 'c'.repeat(random.pick([1000, 100_000])) }],
    ['unsupported protocol', { ...valid, protocolVersion: random.pick([0, 2, 99, 2 ** 32 - 1]) }],
  ];
  const [how, init] = random.pick(variants);
  return { frame: hello(init), how };
}

/** Any agent message, hostile values included (a Hello among them, whose identity is junk). */
function anyMessage(random: Random, pool: Pool): Uint8Array {
  return toBinary(
    agentv1.AgentMessageSchema,
    generate(agentv1.AgentMessageSchema, random, pool, { hostility: 0.3, oversize: 0.005 }),
  );
}

function junk(random: Random, pool: Pool, count: number): Uint8Array[] {
  return Array.from({ length: count }, () =>
    random.chance(0.8) ? anyMessage(random, pool) : mutateBytes(anyMessage(random, pool), random).body,
  );
}

function plan(random: Random, options: AgentFuzzOptions, pool: Pool): Plan {
  const kind = random.pick<Kind>([
    'silent',
    'bad hello',
    'bad hello',
    'other first',
    'garbage',
    'valid then junk',
  ]);
  switch (kind) {
    case 'silent':
      return { kind, frames: [], what: kind };
    case 'bad hello': {
      const { frame, how } = badHello(random, options);
      return { kind, frames: [frame, ...junk(random, pool, random.int(4))], what: `${kind}: ${how}` };
    }
    case 'other first': {
      let first = anyMessage(random, pool);
      while (fromBinary(agentv1.AgentMessageSchema, first).body.case === 'hello')
        first = anyMessage(random, pool);
      return { kind, frames: [first, ...junk(random, pool, random.int(4))], what: kind };
    }
    case 'garbage': {
      const damaged = mutateBytes(hello(random.pick(options.hosts)), random);
      const frame = random.chance(0.5) ? damaged.body : random.bytes(1 + random.int(64));
      return { kind, frames: [frame], what: `${kind}` };
    }
    case 'valid then junk':
      return {
        kind,
        frames: [hello(random.pick(options.hosts)), ...junk(random, pool, 1 + random.int(12))],
        what: kind,
      };
  }
}

interface Outcome {
  welcomed: boolean;
  status: grpc.StatusObject | undefined;
  /** ms from opening the stream to its status. */
  closedAfterMs: number;
}

/** Runs one stream: sends the frames, half-closes once welcomed, and waits for the status. */
function runStream(client: grpc.Client, frames: Uint8Array[], boundMs: number, endWhenWelcomed: boolean) {
  return new Promise<Outcome>((resolve) => {
    const opened = performance.now();
    const call = client.makeBidiStreamRequest(
      CONNECT_PATH,
      (frame: Uint8Array) => Buffer.from(frame),
      (bytes: Buffer) => bytes,
    );
    let welcomed = false;
    let settled = false;
    const settle = (status: grpc.StatusObject | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!status) call.cancel();
      resolve({ welcomed, status, closedAfterMs: performance.now() - opened });
    };
    const timer = setTimeout(() => settle(undefined), boundMs);
    call.on('data', (bytes: Buffer) => {
      try {
        if (fromBinary(agentv1.ControlMessageSchema, bytes).body.case === 'welcome' && !welcomed) {
          welcomed = true;
          if (endWhenWelcomed) call.end();
        }
      } catch {
        // Not ours to judge here: the control plane's messages are checked by its own tests.
      }
    });
    call.on('status', (status: grpc.StatusObject) => settle(status));
    call.on('error', (error: grpc.ServiceError) =>
      settle({ code: error.code, details: error.details, metadata: error.metadata }),
    );
    for (const frame of frames) call.write(frame);
  });
}

/** Opens `streams` agent streams with `concurrency` at a time and checks how each one ends. */
export async function fuzzAgentStreams(options: AgentFuzzOptions, pool: Pool): Promise<AgentFuzzReport> {
  // The grace covers closing under load: 16 streams at once on 2 busy cores with PGlite's single
  // connection have taken over 2 s to close a welcomed stream after its half-close; a stream that
  // never closes still fails.
  const { seed, streams, helloTimeoutMs, graceMs = 5000, concurrency = 16, keep = 50 } = options;
  const client = new grpc.Client(
    `127.0.0.1:${options.port}`,
    grpc.credentials.createSsl(Buffer.from(options.caPem)),
    { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' },
  );
  const report: AgentFuzzReport = { ...emptyReport(), streams: 0, messages: 0 };
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    for (let index = next++; index < streams; index = next++) {
      const random = createRandom((seed ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0);
      const { kind, frames, what } = plan(random, options, pool);
      const boundMs = helloTimeoutMs + graceMs;
      // A welcomed stream is half-closed at once (after its junk), so it too must end within the bound.
      const outcome = await runStream(client, frames, boundMs, true);
      report.streams++;
      report.messages += frames.length;
      report.inputs += frames.length + 1;
      const code = outcome.status
        ? (grpc.status[outcome.status.code] ?? String(outcome.status.code))
        : 'open';
      report.codes[`${outcome.welcomed ? 'welcomed' : 'refused'} ${code}`] =
        (report.codes[`${outcome.welcomed ? 'welcomed' : 'refused'} ${code}`] ?? 0) + 1;
      const failure = judge(kind, outcome, boundMs);
      if (failure) recordFailure(report, { input: index, what, reason: failure }, keep);
      if (report.streams % 200 === 0) options.onProgress?.(report.streams);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    client.close();
  }
  report.elapsedMs = performance.now() - started;
  return report;
}

function judge(kind: Kind, outcome: Outcome, boundMs: number): string | undefined {
  if (!outcome.status) {
    return outcome.welcomed
      ? `still open ${boundMs} ms after the agent half-closed it`
      : `still open ${boundMs} ms after it opened without a valid hello`;
  }
  if (!outcome.welcomed && outcome.status.code === grpc.status.OK) {
    return `closed with OK although no hello was accepted (${kind})`;
  }
  if (outcome.welcomed && (kind === 'bad hello' || kind === 'other first' || kind === 'silent')) {
    return `welcomed a ${kind} stream`;
  }
  return undefined;
}
