// Ending a server stream with a status. grpc-js sends the status after every buffered message, so
// a stream that is cut off because its agent stopped reading is reset instead (RST_STREAM with
// ENHANCE_YOUR_CALM, which the agent's grpc-js reports as RESOURCE_EXHAUSTED) and its buffer freed.
import { constants as http2 } from 'node:http2';
import * as grpc from '@grpc/grpc-js';

export function statusOf(code: grpc.status): string {
  return grpc.status[code] ?? String(code);
}

interface ResettableStream {
  close(code: number): void;
  destroyed: boolean;
}

// grpc-js keeps the HTTP/2 stream private (ServerDuplexStreamImpl.call -> ServerInterceptingCall
// .nextCall -> BaseServerInterceptingCall.stream); there is no public way to reset a stream with
// data still queued. Reached defensively: if the shape changes, the status is sent normally.
function http2StreamOf(call: object): ResettableStream | undefined {
  const inner = (call as { call?: { nextCall?: { stream?: unknown } } }).call?.nextCall?.stream;
  if (inner && typeof (inner as ResettableStream).close === 'function') return inner as ResettableStream;
  return undefined;
}

/** Ends the call with `code`; a RESOURCE_EXHAUSTED call is reset rather than flushed. */
export function closeCall(
  call: grpc.ServerDuplexStream<unknown, unknown>,
  code: grpc.status,
  details: string,
): void {
  if (code === grpc.status.RESOURCE_EXHAUSTED) {
    const stream = http2StreamOf(call);
    if (stream) {
      if (!stream.destroyed) stream.close(http2.NGHTTP2_ENHANCE_YOUR_CALM);
      call.destroy();
      return;
    }
  }
  if (call.writableEnded || call.destroyed) return;
  if (code === grpc.status.OK) {
    call.end();
    return;
  }
  // grpc-js turns an 'error' event on a server stream into the call's final status.
  call.emit('error', Object.assign(new Error(details), { code, details }));
}
