// Checks every RPC body before Connect decodes it (body-check.ts). A body that passes goes on to
// the router unchanged. One that fails is answered by a twin router of the same services and
// interceptors whose innermost interceptor throws the finding: the call is authenticated, counted
// and audited like any other, and the error comes back in the call's own protocol (Connect, gRPC
// or gRPC-web) without this module writing any protocol itself.
import type { DescMessage } from '@bufbuild/protobuf';
import {
  type ConnectRouter,
  createConnectRouter,
  createContextKey,
  createContextValues,
  type Interceptor,
} from '@connectrpc/connect';
import type {
  UniversalHandler,
  UniversalServerRequest,
  UniversalServerResponse,
} from '@connectrpc/connect/protocol';
import { parseContentType as parseConnect } from '@connectrpc/connect/protocol-connect';
import { parseContentType as parseGrpc } from '@connectrpc/connect/protocol-grpc';
import { parseContentType as parseGrpcWeb } from '@connectrpc/connect/protocol-grpc-web';
import { InvalidArgumentError } from '../errors.js';
import { checkBinaryBody, checkJsonBody } from './body-check.js';

interface Format {
  binary: boolean;
  /** Messages ride in length-prefixed envelopes (streaming Connect, gRPC, gRPC-web). */
  enveloped: boolean;
  /** The header naming the body's compression in this protocol. */
  encodingHeader: string;
}

function formatOf(contentType: string | null): Format | undefined {
  const connect = parseConnect(contentType);
  if (connect) {
    return connect.stream
      ? { binary: connect.binary, enveloped: true, encodingHeader: 'connect-content-encoding' }
      : { binary: connect.binary, enveloped: false, encodingHeader: 'content-encoding' };
  }
  const grpcWeb = parseGrpcWeb(contentType);
  // Connect refuses grpc-web-text itself.
  if (grpcWeb && !grpcWeb.text)
    return { binary: grpcWeb.binary, enveloped: true, encodingHeader: 'grpc-encoding' };
  const grpc = parseGrpc(contentType);
  if (grpc) return { binary: grpc.binary, enveloped: true, encodingHeader: 'grpc-encoding' };
  return undefined;
}

const COMPRESSED_FLAG = 0b0000_0001;

/** The complete frames of an enveloped body; a broken frame is Connect's to refuse (InvalidArgument). */
function* envelopes(body: Uint8Array): Generator<{ flags: number; message: Uint8Array }> {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  let offset = 0;
  while (offset + 5 <= body.byteLength) {
    const flags = view.getUint8(offset);
    const end = offset + 5 + view.getUint32(offset + 1);
    if (end > body.byteLength) return;
    yield { flags, message: body.subarray(offset + 5, end) };
    offset = end;
  }
}

function check(schema: DescMessage, format: Format, body: Uint8Array): InvalidArgumentError | undefined {
  const frames = format.enveloped ? envelopes(body) : [{ flags: 0, message: body }];
  for (const { flags, message } of frames) {
    // Only reached when the request names no compression (see the middleware); Connect would
    // call this INTERNAL, but the sender is at fault.
    if (flags & COMPRESSED_FLAG) {
      return new InvalidArgumentError(
        'request',
        `frame flags ${flags}`,
        'is marked compressed but names no compression',
      );
    }
    const found = format.binary ? checkBinaryBody(schema, message) : checkJsonBody(schema, message);
    if (found) return found;
  }
  return undefined;
}

/** An empty request message, framed as the protocol frames it, for the twin router to decode. */
function emptyBody(format: Format): Uint8Array {
  const message = format.binary ? new Uint8Array(0) : new TextEncoder().encode('{}');
  if (!format.enveloped) return message;
  const framed = new Uint8Array(5 + message.byteLength);
  new DataView(framed.buffer).setUint32(1, message.byteLength);
  framed.set(message, 5);
  return framed;
}

/** The body, or undefined when it is declared larger than `max` (Connect then refuses it by its size). */
async function readBody(request: UniversalServerRequest, max: number): Promise<Uint8Array | undefined> {
  const declared = Number(request.header.get('content-length') ?? Number.NaN);
  if (declared > max) return undefined;
  const body = request.body;
  if (!isAsyncIterable(body)) return undefined;
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.byteLength;
    // Handed on as read so far: still over the limit, so Connect refuses it.
    if (size > max) break;
  }
  return Buffer.concat(chunks, size);
}

function isAsyncIterable(value: unknown): value is AsyncIterable<Uint8Array> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

async function* once(body: Uint8Array): AsyncIterable<Uint8Array> {
  yield body;
}

const refusalKey = createContextKey<InvalidArgumentError | undefined>(undefined, {
  description: 'request body refused before decoding',
});

export interface DecodeGuardOptions {
  /** The interceptors of the real router, run for refused calls too. */
  interceptors: readonly Interceptor[];
  /** The router's readMaxBytes: larger bodies are left for Connect to refuse. */
  readMaxBytes: number;
}

/** What the guard made of a call: the request to hand the router, or the refusal's response. */
export type Admission = { request: UniversalServerRequest } | { response: UniversalServerResponse };

export interface DecodeGuard {
  /** Checks a call to `path` before the router's handler decodes it. */
  admit(path: string, request: UniversalServerRequest): Promise<Admission>;
  /** Guards every method registered on `router` so far (call it once the services are registered). */
  cover(router: ConnectRouter): void;
}

export function createDecodeGuard({ interceptors, readMaxBytes }: DecodeGuardOptions): DecodeGuard {
  const refuse: Interceptor = () => async (req) => {
    throw req.contextValues.get(refusalKey) ?? new Error('decode guard: refused call without a finding');
  };
  const twin = createConnectRouter({ interceptors: [...interceptors, refuse], readMaxBytes });
  const guarded = new Map<string, { schema: DescMessage; refusal: UniversalHandler }>();

  return {
    async admit(path, request) {
      const route = request.method === 'POST' ? guarded.get(path) : undefined;
      const format = route && formatOf(request.header.get('content-type'));
      const encoding = format && request.header.get(format.encodingHeader);
      if (!route || !format || (encoding && encoding !== 'identity')) return { request };
      const body = await readBody(request, readMaxBytes);
      if (body === undefined) return { request };
      const finding = body.byteLength > readMaxBytes ? undefined : check(route.schema, format, body);
      if (!finding) return { request: { ...request, body: once(body) } };
      const header = new Headers(request.header);
      header.delete('content-length');
      const response = await route.refusal({
        ...request,
        header,
        body: once(emptyBody(format)),
        contextValues: createContextValues().set(refusalKey, finding),
      });
      return { response };
    },
    cover(router) {
      const services = new Set(router.handlers.map((h) => h.service));
      for (const service of services) {
        if (!twin.handlers.some((h) => h.service === service)) twin.service(service, {});
      }
      for (const handler of twin.handlers) {
        guarded.set(handler.requestPath, { schema: handler.method.input, refusal: handler });
      }
    },
  };
}
