import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { type ServerType, serve } from '@hono/node-server';
import { Hono } from 'hono';
import { mountConnect } from './connect-hono.js';
import { DeviceService, DeviceState, UsageService } from './index.js';

let server: ServerType;
let baseUrl: string;
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
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

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
