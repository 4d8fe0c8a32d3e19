import assert from 'node:assert/strict';
import { createServer as createHttp2Server, type Http2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport } from '@connectrpc/connect-node';
import { type ServerType, serve } from '@hono/node-server';
import { Hono } from 'hono';
import { mountConnect } from './connect-hono.js';
import { DeviceService, DeviceState, UsageService } from './index.js';

let server: ServerType;
let h2cServer: ServerType;
let baseUrl: string;
let h2cUrl: string;
const h2cSessions = new Set<Http2Session>();
let paths: string[];

before(async () => {
  const app = new Hono();
  app.get('/healthz', (c) => c.text('ok'));
  paths = mountConnect(app, {
    routes(router) {
      router.service(DeviceService, {
        getDevice(request) {
          if (request.deviceId !== 'd-1') {
            throw new ConnectError(`device "${request.deviceId}" not found`, Code.NotFound);
          }
          return { device: { deviceId: 'd-1', state: DeviceState.RUNNING, labels: { region: 'eu' } } };
        },
      });
      router.service(UsageService, {
        async *exportUsage(request) {
          for (const line of ['device,minutes\n', `${request.tenantId},5\n`]) {
            yield { csvChunk: new TextEncoder().encode(line) };
          }
        },
      });
    },
  });
  server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  h2cServer = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1', createServer: createHttp2Server });
  // The gRPC client keeps its session open; close() below ends it.
  h2cServer.on('session', (session: Http2Session) => h2cSessions.add(session));
  await Promise.all(
    [server, h2cServer].map((s) => new Promise<void>((resolve) => s.once('listening', () => resolve()))),
  );
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  h2cUrl = `http://127.0.0.1:${(h2cServer.address() as AddressInfo).port}`;
});

after(() => {
  for (const session of h2cSessions) session.close();
  return Promise.all(
    [server, h2cServer].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
  );
});

test('a Connect client calls a service served by Hono over a real socket', async () => {
  const transport = createConnectTransport({ baseUrl, httpVersion: '1.1' });
  const client = createClient(DeviceService, transport);
  const response = await client.getDevice({ deviceId: 'd-1' });
  assert.equal(response.device?.deviceId, 'd-1');
  assert.equal(response.device?.state, DeviceState.RUNNING);
  assert.deepEqual(response.device?.labels, { region: 'eu' });

  await assert.rejects(client.getDevice({ deviceId: 'nope' }), (error: unknown) => {
    const e = ConnectError.from(error);
    return e.code === Code.NotFound && e.rawMessage === 'device "nope" not found';
  });
});

test('server streaming works through the same adapter', async () => {
  const client = createClient(UsageService, createConnectTransport({ baseUrl, httpVersion: '1.1' }));
  let text = '';
  for await (const chunk of client.exportUsage({ tenantId: 't-1' })) {
    text += new TextDecoder().decode(chunk.csvChunk);
  }
  assert.equal(text, 'device,minutes\nt-1,5\n');
});

test('the same server answers plain HTTP routes and lists its RPC paths', async () => {
  const health = await fetch(`${baseUrl}/healthz`);
  assert.equal(await health.text(), 'ok');
  assert.ok(paths.includes('/cphone.api.v1.DeviceService/GetDevice'));
  const unknown = await fetch(`${baseUrl}/cphone.api.v1.DeviceService/Nope`, { method: 'POST' });
  assert.equal(unknown.status, 404);
});

test('gRPC over HTTP/2 gets its status in trailers through the same adapter', async () => {
  const transport = createGrpcTransport({ baseUrl: h2cUrl });
  const devices = createClient(DeviceService, transport);
  assert.equal((await devices.getDevice({ deviceId: 'd-1' })).device?.deviceId, 'd-1');
  await assert.rejects(devices.getDevice({ deviceId: 'nope' }), (error: unknown) => {
    const e = ConnectError.from(error);
    return e.code === Code.NotFound && e.rawMessage === 'device "nope" not found';
  });
  let text = '';
  for await (const chunk of createClient(UsageService, transport).exportUsage({ tenantId: 't-2' })) {
    text += new TextDecoder().decode(chunk.csvChunk);
  }
  assert.equal(text, 'device,minutes\nt-2,5\n');
});
