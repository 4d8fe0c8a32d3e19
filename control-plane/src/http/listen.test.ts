import assert from 'node:assert/strict';
import http2 from 'node:http2';
import https from 'node:https';
import { test } from 'node:test';
import { createCertificateAuthority, issueServerCertificate } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { listenHttp } from './listen.js';

function h2Get(session: http2.ClientHttp2Session, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path });
    let body = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      body += chunk;
    });
    stream.on('end', () => resolve(body));
    stream.on('error', reject);
  });
}

test('one port answers HTTP/1.1 and HTTP/2 with prior knowledge, then closes with idle clients', async () => {
  const listener = await listenHttp({
    port: 0,
    hostname: '127.0.0.1',
    listener: (request, response) => response.end(`${request.httpVersion} ${request.url}`),
  });
  const base = `http://127.0.0.1:${listener.address().port}`;
  // Both methods start with P, as the HTTP/2 preface does.
  assert.equal(await (await fetch(`${base}/a`)).text(), '1.1 /a');
  assert.equal(await (await fetch(`${base}/b`, { method: 'POST', body: 'x' })).text(), '1.1 /b');
  const session = http2.connect(base);
  session.on('error', () => {});
  assert.equal(await h2Get(session, '/c'), '2.0 /c');
  assert.equal(await h2Get(session, '/d'), '2.0 /d');

  // fetch's keep-alive socket and the open HTTP/2 session are idle: neither holds close() open (the
  // client never lets go of either itself; a close() that waited for them would time the test out).
  await listener.close();
  session.destroy();
});

test('with TLS, ALPN picks HTTP/2 or HTTP/1.1; a request in flight at close() is answered, then it resolves', async () => {
  const ca = await createCertificateAuthority('listen test CA');
  const leaf = await issueServerCertificate(ca, { commonName: 'localhost' });
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const arrived: string[] = [];
  const listener = await listenHttp({
    port: 0,
    hostname: '127.0.0.1',
    tls: leaf,
    listener: (request, response) => {
      arrived.push(request.url ?? '');
      const answer = () => response.end(`${request.httpVersion} ${request.url}`);
      if (request.url === '/slow') void held.then(answer);
      else answer();
    },
  });
  const base = `https://127.0.0.1:${listener.address().port}`;
  const agent = new https.Agent({ ca: ca.cert, keepAlive: true });
  const get1 = (path: string) =>
    new Promise<string>((resolve, reject) => {
      https
        .get(`${base}${path}`, { agent }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            body += c;
          });
          res.on('end', () => resolve(body));
        })
        .on('error', reject);
    });
  assert.equal(await get1('/a'), '1.1 /a');
  const session = http2.connect(base, { ca: ca.cert });
  session.on('error', () => {});
  assert.equal(await h2Get(session, '/b'), '2.0 /b');

  const slow = get1('/slow');
  await waitFor('the slow request arrived', () => arrived.includes('/slow'), Boolean);
  let closed = false;
  const closing = listener.close().then(() => {
    closed = true;
  });
  // Not closed while the request is unanswered.
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(closed, false);
  release();
  assert.equal(await slow, '1.1 /slow');
  await closing;
  session.destroy();
  agent.destroy();
});
