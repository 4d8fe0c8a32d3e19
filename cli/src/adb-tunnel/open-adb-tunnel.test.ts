// The CLI's tunnel library against a real control plane (CreateAdbTunnel over the public API) and
// the agent's real tunnel endpoint (token checks with the keys the control plane sent down a real
// agent stream) in front of a virtual phone: Debian's adb through the local port, one token for
// many connections until it nears expiry, and refusals reaching the caller.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import {
  bearerTransport,
  createAgentClient,
  enrollTestHost,
  insertTestDevice,
  startTestControlPlane,
  TestAgent,
  type TestControlPlane,
} from '@cphone/control-plane/testing';
import { connectAdbTcp, startVirtualPhone, type VirtualPhone } from '@cphone/host-agent';
import { AdbTunnels, DebianAdb, StreamAuth } from '@cphone/host-agent/testing';
import { agentv1, DeviceService, TenantKind, TenantService } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import pino from 'pino';
import { Registry } from 'prom-client';
import { openAdbTunnel } from './open-adb-tunnel.js';

let plane: TestControlPlane;
let agentClient: ReturnType<typeof createAgentClient>;
let agent: TestAgent;
let server: Server;
let tunnels: AdbTunnels;
let auth: StreamAuth;
let phone: VirtualPhone;
let adb: DebianAdb;
let deviceId = '';
let stoppedId = '';

before(async () => {
  plane = await startTestControlPlane({ grpcHost: '127.0.0.1' });
  const db = plane.plane.deps.db;
  const host = await enrollTestHost(db);
  const tenantId =
    (
      await createClient(
        TenantService,
        bearerTransport(plane.plane.httpUrl, plane.plane.bootstrapToken ?? ''),
      ).createTenant({
        kind: TenantKind.RESELLER,
        displayName: 'cli tunnels',
      })
    ).tenant?.tenantId ?? '';
  ({ deviceId } = await insertTestDevice(db, { hostId: host.hostId, state: 'running', tenantId }));
  ({ deviceId: stoppedId } = await insertTestDevice(db, { hostId: host.hostId, state: 'stopped', tenantId }));
  phone = await startVirtualPhone({ serial: deviceId, host: '127.0.0.1', model: 'CLI Tunnel Phone' });
  auth = new StreamAuth({ hostId: host.hostId });
  tunnels = new AdbTunnels({
    verify: (token) => auth.verifyAdbTunnel(token),
    phones: {
      observed: (id) =>
        id === deviceId
          ? ({ deviceId, state: agentv1.DeviceState.RUNNING } as agentv1.ObservedDevice)
          : undefined,
      adbEndpoint: (id) => (id === deviceId ? { host: phone.host, port: phone.port } : undefined),
    },
    report: () => undefined,
    registry: new Registry(),
    logger: pino({ level: 'silent' }),
  });
  server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket, head) => tunnels.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  agentClient = createAgentClient(plane.plane.grpcPort, plane.plane.deps.gateway.caPem ?? '');
  agent = TestAgent.connect(agentClient, {
    ...host,
    streamEndpoint: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/signal`,
  });
  auth.setKeys((await agent.next('welcome')).streamTokenKeys);
  adb = new DebianAdb();
});

after(async () => {
  await adb?.dispose();
  tunnels?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  agent?.cancel();
  agentClient?.close();
  await phone?.close();
  await plane?.close();
});

/** The real API client, counting the tokens asked for. */
function countingDevices() {
  const real = createClient(
    DeviceService,
    bearerTransport(plane.plane.httpUrl, plane.plane.bootstrapToken ?? ''),
  );
  const counter = {
    calls: 0,
    createAdbTunnel: ((req, options) => {
      counter.calls++;
      return real.createAdbTunnel(req, options);
    }) as typeof real.createAdbTunnel,
  };
  return counter;
}

test('Debian’s adb reaches the phone through the local port; connections share one token', async () => {
  const devices = countingDevices();
  const tunnel = await openAdbTunnel({ devices, deviceId });
  try {
    assert.match(tunnel.address, /^127\.0\.0\.1:\d+$/);
    assert.match(await adb.text(['connect', tunnel.address]), /connected to/);
    await waitFor(
      'adb to see the phone',
      () => adb.state(tunnel.address),
      (s) => s === 'device',
    );
    assert.equal(
      await adb.text(['-s', tunnel.address, 'shell', 'getprop', 'ro.product.model']),
      'CLI Tunnel Phone\n',
    );
    const second = await connectAdbTcp('127.0.0.1', tunnel.port);
    await waitFor(
      'two connections carried',
      () => tunnel.connections,
      (n) => n === 2,
    );
    assert.equal(devices.calls, 1, 'one token for both connections');
    second.close();
    await adb.text(['disconnect', tunnel.address]);
    await waitFor(
      'the connections ended',
      () => tunnel.connections,
      (n) => n === 0,
    );
  } finally {
    await tunnel.close();
  }
});

test('a token near its expiry is replaced for the next connection', async () => {
  const devices = countingDevices();
  // Every token is "near expiry" when the margin exceeds its lifetime.
  const tunnel = await openAdbTunnel({ devices, deviceId, ttlSeconds: 60, renewBeforeMs: 120_000 });
  try {
    const a = await connectAdbTcp('127.0.0.1', tunnel.port);
    await waitFor(
      'carried',
      () => tunnel.connections,
      (n) => n === 1,
    );
    await waitFor(
      'a second token asked for',
      () => devices.calls,
      (n) => n === 2,
    );
    a.close();
  } finally {
    await tunnel.close();
  }
});

test('refusals reach the caller: a stopped phone at open, a revoked token at connect', async () => {
  await assert.rejects(
    openAdbTunnel({ devices: countingDevices(), deviceId: stoppedId }),
    (e: unknown) => ConnectError.from(e).code === Code.FailedPrecondition && /is stopped/.test(String(e)),
  );
  const errors: Error[] = [];
  const tunnel = await openAdbTunnel({
    devices: countingDevices(),
    deviceId,
    onError: (e) => errors.push(e),
  });
  try {
    auth.revoke({ deviceId, reason: 'DEVICE_STOPPED' } as agentv1.StreamRevocation);
    await connectAdbTcp('127.0.0.1', tunnel.port, { timeoutMs: 2000 }).catch(() => undefined);
    const refused = await waitFor(
      'the refusal',
      () => errors[0]?.message,
      (m) => m !== undefined,
    );
    assert.equal(refused, 'the agent refused the tunnel (HTTP 401): the ADB tunnel token was revoked');
  } finally {
    await tunnel.close();
  }
});
