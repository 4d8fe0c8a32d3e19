import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { test } from 'node:test';
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

  // fetch's keep-alive socket and the open HTTP/2 session are idle: neither holds close() open.
  const started = Date.now();
  await listener.close();
  assert.ok(Date.now() - started < 1000, `closed in ${Date.now() - started} ms`);
  session.destroy();
});
