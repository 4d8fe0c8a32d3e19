// One delivery attempt over HTTP(S): POST the body to the address the target check resolved (the
// connection never looks the name up again), with the Standard Webhooks headers, a timeout, and
// only the start of the answer read.
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import type { ResolvedTarget } from './target-policy.js';

export interface SendRequest {
  readonly target: ResolvedTarget;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly timeoutMs: number;
  /** Aborts the attempt (the control plane is stopping). */
  readonly signal: AbortSignal;
}

export interface SendResult {
  /** 0 when no answer came. */
  readonly status: number;
  readonly error: string;
  readonly excerpt: string;
  readonly durationMs: number;
}

export const EXCERPT_CHARS = 256;
const MAX_READ_BYTES = 4096;

export function send(request: SendRequest): Promise<SendResult> {
  const { target, body } = request;
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const pinned: LookupFunction = (_hostname, options, callback) => {
    if ((options as { all?: boolean }).all)
      (callback as (err: null, addresses: { address: string; family: number }[]) => void)(null, [
        { address: target.address, family: target.family },
      ]);
    else callback(null, target.address, target.family);
  };
  return new Promise<SendResult>((resolve) => {
    let status = 0;
    let durationMs = 0;
    let done = false;
    const finish = (result: Omit<SendResult, 'durationMs'>) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ ...result, durationMs: durationMs || elapsed() });
    };
    const agent = target.url.protocol === 'https:' ? https : http;
    const req = agent.request(
      target.url,
      {
        method: 'POST',
        lookup: pinned,
        agent: false,
        signal: request.signal,
        headers: {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
          'user-agent': 'cphone-webhooks/1',
          ...request.headers,
        },
      },
      (res) => {
        status = res.statusCode ?? 0;
        durationMs = elapsed();
        clearTimeout(timer);
        const chunks: Buffer[] = [];
        let read = 0;
        const excerpt = () => Buffer.concat(chunks).toString('utf8').slice(0, EXCERPT_CHARS);
        res.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          read += chunk.length;
          if (read >= MAX_READ_BYTES) {
            res.destroy();
            finish({ status, error: '', excerpt: excerpt() });
          }
        });
        res.on('end', () => finish({ status, error: '', excerpt: excerpt() }));
        res.on('error', () => finish({ status, error: '', excerpt: excerpt() }));
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      finish({ status: 0, error: `timed out after ${request.timeoutMs} ms`, excerpt: '' });
    }, request.timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => {
      const error = request.signal.aborted
        ? 'aborted: the control plane stopped during the attempt'
        : `${err.code ?? 'error'}: ${err.message}`;
      finish({ status, error, excerpt: '' });
    });
    req.end(body);
  });
}
