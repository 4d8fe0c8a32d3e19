// Fuzzes the public API through a real server: every method of every cphone.api.v1 service, in
// Connect JSON and binary (and some gRPC-web), with structure-aware messages, raw byte and JSON
// mutations of valid ones, and odd headers. Invariants: no INTERNAL, UNKNOWN or DATA_LOSS, no 5xx
// other than the codes Connect maps there on purpose (501 unimplemented, 503 unavailable, 504
// deadline exceeded), and an answer to every call within a bound.
import { Agent, request } from 'node:http';
import { type DescMethod, type DescService, toBinary, toJson } from '@bufbuild/protobuf';
import * as proto from '@cphone/proto';
import { generate, type Pool } from './messages.js';
import { mutateBytes, mutateJson } from './mutations.js';
import { createRandom, type Random } from './random.js';

/** Every method of every public service, registered on the server or not. */
export function publicMethods(): DescMethod[] {
  return Object.values(proto as Record<string, unknown>)
    .filter(
      (v): v is DescService =>
        typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'service',
    )
    .filter((service) => service.typeName.startsWith('cphone.api.'))
    .flatMap((service) => service.methods);
}

export interface ApiInput {
  readonly index: number;
  readonly path: string;
  readonly body: Uint8Array;
  readonly headers: Record<string, string>;
  /** How the input was made, for the report. */
  readonly what: string;
}

/** The random source of input `index` alone, so any one input can be made again from the seed. */
export function inputRandom(seed: number, index: number): Random {
  return createRandom((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
}

function frame(message: Uint8Array, flags = 0): Uint8Array {
  const framed = new Uint8Array(5 + message.byteLength);
  framed[0] = flags;
  new DataView(framed.buffer).setUint32(1, message.byteLength);
  framed.set(message, 5);
  return framed;
}

const encoder = new TextEncoder();

/** Input `index` of a run: a method, a credential, a message, an encoding and maybe some damage. */
export function makeApiInput(
  seed: number,
  index: number,
  methods: readonly DescMethod[],
  tokens: readonly string[],
  pool: Pool,
): ApiInput {
  const random = inputRandom(seed, index);
  const method = random.pick(methods);
  const budget = random.chance(0.02) ? 1024 * 1024 : 16 * 1024;
  const message = generate(method.input, random, pool, { hostility: 0.25, oversize: 0.01, budget });
  const headers: Record<string, string> = {};
  const token = random.chance(0.9)
    ? random.pick(tokens)
    : random.pick(['', 'x', 'key_x.cpk_y', 'y'.repeat(300)]);
  if (token) headers.authorization = `Bearer ${token}`;
  let json: unknown;
  try {
    json = toJson(method.input, message);
  } catch {
    // Out-of-range timestamps have no JSON form: such a message goes as binary.
    json = undefined;
  }
  const binary = json === undefined || random.chance(0.5);
  let body: Uint8Array = binary ? toBinary(method.input, message) : encoder.encode(JSON.stringify(json));
  headers['content-type'] = binary ? 'application/proto' : 'application/json';
  let what = binary ? 'binary' : 'json';
  const mode = random.int(20);
  if (mode < 12) {
    what += ' structured';
  } else if (mode < 16) {
    const mutated = mutateBytes(body, random);
    body = mutated.body;
    what += ` bytes(${mutated.how})`;
  } else if (mode < 18 && json !== undefined) {
    const mutated = mutateJson(json, random);
    body = encoder.encode(JSON.stringify(mutated.json) ?? 'null');
    headers['content-type'] = 'application/json';
    what = `json mutated(${mutated.how})`;
  } else {
    // The protocol around the message: framing, content types, timeouts, compression.
    const variant = random.int(6);
    if (variant === 0) {
      headers['content-type'] = binary ? 'application/grpc-web+proto' : 'application/grpc-web+json';
      body = random.chance(0.7)
        ? frame(body)
        : frame(body, random.pick([1, 0x80, 0xff])).subarray(0, 3 + random.int(8));
      what += ' grpc-web';
    } else if (variant === 1) {
      headers['content-type'] = random.pick([
        'text/plain',
        '',
        'application/json; charset=latin1',
        'application/connect+proto',
        'application/grpc-web-text',
      ]);
      what += ` content-type ${JSON.stringify(headers['content-type'])}`;
    } else if (variant === 2) {
      headers['connect-timeout-ms'] = random.pick(['0', '1', '-1', 'abc', '99999999999', '1.5']);
      what += ` timeout ${headers['connect-timeout-ms']}`;
    } else if (variant === 3) {
      headers['content-encoding'] = random.pick(['gzip', 'br', 'identity', 'x']);
      what += ` encoding ${headers['content-encoding']}`;
    } else if (variant === 4) {
      headers['connect-protocol-version'] = random.pick(['1', '2', '']);
      what += ' protocol-version';
    } else {
      body = new Uint8Array(0);
      what += ' empty';
    }
  }
  const path = `/${method.parent.typeName}/${method.name}`;
  return { index, path, body, headers, what: `${method.parent.name}/${method.name} ${what}` };
}

export interface Answer {
  status: number;
  code: string;
  message: string;
}

const GRPC_CODES = [
  'ok',
  'canceled',
  'unknown',
  'invalid_argument',
  'deadline_exceeded',
  'not_found',
  'already_exists',
  'permission_denied',
  'resource_exhausted',
  'failed_precondition',
  'aborted',
  'out_of_range',
  'unimplemented',
  'internal',
  'unavailable',
  'data_loss',
  'unauthenticated',
];

/** The call's outcome in Connect's words, whatever protocol answered. */
export function readAnswer(
  status: number,
  header: (name: string) => string | undefined,
  body: Uint8Array,
): Answer {
  const grpcStatus = header('grpc-status');
  if (grpcStatus !== undefined) {
    return {
      status,
      code: GRPC_CODES[Number(grpcStatus)] ?? 'unknown',
      message: header('grpc-message') ?? '',
    };
  }
  if ((header('content-type') ?? '').startsWith('application/grpc-web')) {
    const text = Buffer.from(body).toString('latin1');
    const code = /grpc-status: ?(\d+)/.exec(text)?.[1];
    const message = /grpc-message: ?([^\r\n]*)/.exec(text)?.[1] ?? '';
    return {
      status,
      code: code === undefined ? 'no status' : (GRPC_CODES[Number(code)] ?? 'unknown'),
      message,
    };
  }
  if (status === 200) return { status, code: 'ok', message: '' };
  try {
    const error = JSON.parse(Buffer.from(body).toString()) as {
      code?: unknown;
      message?: unknown;
      error?: unknown;
    };
    if (typeof error.code === 'string')
      return { status, code: error.code, message: String(error.message ?? '') };
    // Hono's 404 for a route no service serves (a service not built yet).
    if (status === 404) return { status, code: 'unimplemented', message: String(error.error ?? '') };
  } catch {
    // Not JSON: Connect's bare 405 and 415, or anything else judged by status below.
  }
  const byStatus: Record<number, string> = {
    405: 'unimplemented',
    415: 'unimplemented',
    404: 'unimplemented',
  };
  return { status, code: byStatus[status] ?? `http ${status}`, message: '' };
}

const FORBIDDEN_CODES = new Set(['internal', 'unknown', 'data_loss', 'no status']);
// Statuses Connect gives these codes by design; any other 5xx is a failure.
const DELIBERATE_5XX: Record<number, string> = {
  501: 'unimplemented',
  503: 'unavailable',
  504: 'deadline_exceeded',
};

/** Why the answer breaks the invariants, or undefined. */
export function violation(answer: Answer): string | undefined {
  if (FORBIDDEN_CODES.has(answer.code) || answer.code.startsWith('http 5')) return `code ${answer.code}`;
  if (answer.status >= 500 && DELIBERATE_5XX[answer.status] !== answer.code) {
    return `HTTP ${answer.status} with code ${answer.code}`;
  }
  return undefined;
}

export interface FuzzFailure {
  readonly input: number;
  readonly what: string;
  readonly reason: string;
}

export interface FuzzReport {
  inputs: number;
  failures: FuzzFailure[];
  /** Failures beyond the ones kept in `failures`. */
  moreFailures: number;
  /** Every failure by kind (input description and reason, numbers elided), with a first example. */
  kinds: Record<string, { count: number; example: number }>;
  codes: Record<string, number>;
  elapsedMs: number;
}

export function emptyReport(): FuzzReport {
  return { inputs: 0, failures: [], moreFailures: 0, kinds: {}, codes: {}, elapsedMs: 0 };
}

/** Counts a failure by kind, and keeps it whole while fewer than `keep` are. */
export function recordFailure(report: FuzzReport, failure: FuzzFailure, keep: number): void {
  const kind = `${failure.what.replace(/\(.*\)/, '').trim()} | ${failure.reason.replace(/\d+/g, 'N').slice(0, 120)}`;
  const seen = report.kinds[kind];
  if (seen) seen.count++;
  else report.kinds[kind] = { count: 1, example: failure.input };
  if (report.failures.length < keep) report.failures.push(failure);
  else report.moreFailures++;
}

export interface ApiFuzzOptions {
  url: string;
  seed: number;
  /** Inputs to send, numbered from `first` (default 0). */
  inputs: number;
  first?: number;
  tokens: readonly string[];
  pool: Pool;
  concurrency?: number;
  /** The bound every call must be answered within. */
  callTimeoutMs?: number;
  /** Failures kept whole in the report. */
  keep?: number;
  onProgress?: (done: number) => void;
}

/** One call over a kept-alive connection of `agent` (node:http costs the fuzzer less than fetch). */
function sendOnce(agent: Agent, url: string, input: ApiInput, callTimeoutMs: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${input.path}`, {
      method: 'POST',
      agent,
      headers: { ...input.headers, 'content-length': String(input.body.byteLength) },
      timeout: callTimeoutMs,
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { name: 'TimeoutError' })));
    req.on('error', reject);
    req.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        const header = (name: string) => {
          const value = response.headers[name];
          return Array.isArray(value) ? value.join(', ') : value;
        };
        resolve(readAnswer(response.statusCode ?? 0, header, Buffer.concat(chunks)));
      });
    });
    req.end(input.body);
  });
}

/**
 * The call's answer, or why there was none. A connection the server closed before answering is
 * tried once more on a fresh one: a kept-alive connection the server times out just as the client
 * reuses it is a race of HTTP/1.1 keep-alive, not a server failure; twice in a row is one.
 */
async function send(
  agent: Agent,
  url: string,
  input: ApiInput,
  callTimeoutMs: number,
): Promise<{ answer: Answer } | { failure: string }> {
  for (let attempt = 0; ; attempt++) {
    try {
      return { answer: await sendOnce(agent, url, input, callTimeoutMs) };
    } catch (error) {
      if ((error as Error).name === 'TimeoutError')
        return { failure: `no answer within ${callTimeoutMs} ms` };
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (attempt === 0 && ['ECONNRESET', 'EPIPE'].includes(code)) continue;
      return { failure: `call failed: ${code} ${(error as Error).message}`.trim() };
    }
  }
}

/** Sends the inputs with `concurrency` calls in flight and checks each answer. */
export async function fuzzApi(options: ApiFuzzOptions): Promise<FuzzReport> {
  const { url, seed, inputs, tokens, pool, concurrency = 8, callTimeoutMs = 10_000, keep = 50 } = options;
  const first = options.first ?? 0;
  const methods = publicMethods();
  const report = emptyReport();
  const started = performance.now();
  const fail = (failure: FuzzFailure) => recordFailure(report, failure, keep);
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  let next = first;
  const worker = async () => {
    for (let index = next++; index < first + inputs; index = next++) {
      const input = makeApiInput(seed, index, methods, tokens, pool);
      const outcome = await send(agent, url, input, callTimeoutMs);
      if ('answer' in outcome) {
        const { answer } = outcome;
        report.codes[answer.code] = (report.codes[answer.code] ?? 0) + 1;
        const broken = violation(answer);
        if (broken)
          fail({ input: index, what: input.what, reason: `${broken}: ${answer.message.slice(0, 200)}` });
      } else {
        report.codes.failed = (report.codes.failed ?? 0) + 1;
        fail({ input: index, what: input.what, reason: outcome.failure });
      }
      report.inputs++;
      if (report.inputs % 1000 === 0) options.onProgress?.(report.inputs);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    agent.destroy();
  }
  report.elapsedMs = performance.now() - started;
  return report;
}
