// One port for HTTP/1.1 and HTTP/2. Browsers, curl and the Connect and gRPC-web protocols speak
// HTTP/1.1; plain gRPC needs HTTP/2. With TLS, ALPN picks the version (Node's secure http2 server
// with allowHTTP1). In cleartext, HTTP/2 comes with prior knowledge (h2c), and Node's
// http2.createServer ignores allowHTTP1 without TLS (it has no ALPN to go by), so each connection's
// first bytes are read: the HTTP/2 client preface sends it to the http2 server, anything else to
// the http1 server, with the bytes put back first.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2, { type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from 'node:http2';
import net, { type AddressInfo, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

export type RequestListener = (
  request: IncomingMessage | Http2ServerRequest,
  response: ServerResponse | Http2ServerResponse,
) => void;

export interface HttpListenOptions {
  port: number;
  hostname: string;
  /** Called for every request of either HTTP version. */
  listener: RequestListener;
  /**
   * A connection that sends nothing (or does not finish its TLS handshake) this long is dropped
   * (default 30 s). Longer than a browser keeps a preconnected socket unused (Chromium: 10 s):
   * dropping one just as the browser sends its first request on it fails that request, and a
   * browser retries only on sockets it had used before.
   */
  firstBytesTimeoutMs?: number;
  /** PEM certificate chain and key: HTTPS with ALPN h2 and http/1.1 instead of cleartext. */
  tls?: { cert: string | Buffer; key: string | Buffer } | undefined;
}

export interface HttpListener {
  address(): AddressInfo;
  /** Stops accepting; requests in flight finish, idle connections close; resolves when all are gone. */
  close(): Promise<void>;
}

const FIRST_BYTES_TIMEOUT_MS = 30_000;
/**
 * Idle HTTP/1.1 keep-alive connections are closed after this: longer than load balancers' usual
 * idle timeout (60 s), so the server is never the side that closes a connection a client is about
 * to reuse (Node's default, 5 s, races with every client that keeps sockets longer).
 */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** Listens on one port for HTTP/1.1 and h2c; resolves once listening. */
export async function listenHttp(options: HttpListenOptions): Promise<HttpListener> {
  if (options.tls) return listenHttps(options, options.tls);
  const { port, hostname, listener, firstBytesTimeoutMs = FIRST_BYTES_TIMEOUT_MS } = options;
  const http1 = http.createServer(
    { keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS, headersTimeout: KEEP_ALIVE_TIMEOUT_MS + 1000 },
    listener,
  );
  const h2c = http2.createServer(listener);
  const sessions = new Set<Http2Session>();
  let closing = false;
  h2c.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    if (closing) session.close();
  });

  // Connections that have not yet said which protocol they speak.
  const undecided = new Set<Socket>();
  const route = (socket: Socket) => {
    if (closing) {
      socket.destroy();
      return;
    }
    undecided.add(socket);
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), firstBytesTimeoutMs);
    const onReadable = () => {
      for (let chunk = socket.read() as Buffer | null; chunk; chunk = socket.read() as Buffer | null) {
        head = Buffer.concat([head, chunk]);
      }
      const seen = Math.min(head.byteLength, PREFACE.byteLength);
      const h2 = head.subarray(0, seen).equals(PREFACE.subarray(0, seen));
      // Still a prefix of the preface: wait for more.
      if (h2 && seen < PREFACE.byteLength) return;
      clearTimeout(timer);
      undecided.delete(socket);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.unshift(head);
      (h2 ? h2c : http1).emit('connection', socket);
    };
    const onEnd = () => {
      clearTimeout(timer);
      undecided.delete(socket);
      socket.destroy();
    };
    socket.on('readable', onReadable);
    socket.once('end', onEnd);
    socket.on('error', () => socket.destroy());
    socket.once('close', () => {
      clearTimeout(timer);
      undecided.delete(socket);
    });
  };

  // noDelay as http.createServer sets it on the sockets it accepts itself: these are accepted here,
  // and with Nagle on, a response written in two pieces waits for the client's delayed ACK (~40 ms).
  const server = net.createServer({ noDelay: true }, route);
  await listening(server, port, hostname);
  // http.Server tracks its connections (idle ones to close, header and request timeouts) only
  // from its 'listening' event; this one never listens itself.
  http1.emit('listening');
  return {
    address: () => server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        closing = true;
        // The net server's callback waits for every socket it accepted, whichever server holds it.
        server.close(() => resolve());
        // HTTP/1.1 answers in flight with Connection: close; idle keep-alive sockets close now.
        http1.close();
        http1.closeIdleConnections();
        // GOAWAY: streams in flight finish, no new ones open, then the session ends.
        for (const session of sessions) session.close();
        for (const socket of undecided) socket.destroy();
      }),
  };
}

async function listenHttps(
  { port, hostname, listener, firstBytesTimeoutMs = FIRST_BYTES_TIMEOUT_MS }: HttpListenOptions,
  tls: { cert: string | Buffer; key: string | Buffer },
): Promise<HttpListener> {
  const server = http2.createSecureServer(
    { ...tls, allowHTTP1: true, noDelay: true, handshakeTimeout: firstBytesTimeoutMs },
    listener,
  );
  const sessions = new Set<Http2Session>();
  // HTTP/1.1 connections and how many of their requests are unanswered: idle ones close on close().
  const http1 = new Map<TLSSocket, number>();
  let closing = false;
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    if (closing) session.close();
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    if (socket.alpnProtocol === 'h2') return;
    if (closing) {
      socket.destroy();
      return;
    }
    http1.set(socket, 0);
    socket.once('close', () => http1.delete(socket));
  });
  server.on('request', (request: IncomingMessage | Http2ServerRequest, response) => {
    if (request.httpVersionMajor !== 1) return;
    const socket = request.socket as TLSSocket;
    http1.set(socket, (http1.get(socket) ?? 0) + 1);
    response.once('close', () => {
      const left = (http1.get(socket) ?? 1) - 1;
      http1.set(socket, left);
      if (closing && left === 0) socket.end();
    });
  });
  await listening(server, port, hostname);
  return {
    address: () => server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        closing = true;
        server.close(() => resolve());
        for (const session of sessions) session.close();
        for (const [socket, unanswered] of http1) if (unanswered === 0) socket.end();
      }),
  };
}

function listening(server: net.Server, port: number, hostname: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, hostname, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
