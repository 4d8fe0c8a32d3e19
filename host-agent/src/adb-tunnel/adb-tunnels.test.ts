// The agent's tunnel endpoint on a plain HTTP server, against a virtual phone's real adbd: who is
// refused before any upgrade (no token, another host's, a stream token, a phone not running), the
// bytes of an ADB handshake carried both ways, and the ends (client close, device revocation, a
// stopped phone, the agent stopping) each reported once with duration and bytes.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import {
  type AdbTunnelTokenClaims,
  agentv1,
  signAdbTunnelToken,
  signingKey,
  signStreamToken,
} from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import pino from 'pino';
import { Registry } from 'prom-client';
import WebSocket from 'ws';
import { StreamAuth } from '../stream/stream-auth.js';
import { startVirtualPhone, type VirtualPhone } from '../virtual-phone/index.js';
import { type AdbTunnelReportInit, AdbTunnels } from './adb-tunnels.js';

const key = signingKey(
  'sk-1',
  generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
);
const claims: AdbTunnelTokenClaims = {
  tunnelId: 'adbt_1',
  deviceId: 'dev_1',
  hostId: 'host_a',
  tenantId: 'tnt_1',
  actor: 'key_1',
  expiresAt: Math.floor(Date.now() / 1000) + 600,
};
const token = (over: Partial<AdbTunnelTokenClaims> = {}) => signAdbTunnelToken(key, { ...claims, ...over });

let phone: VirtualPhone;
let server: Server;
let tunnels: AdbTunnels;
let url = '';
const registry = new Registry();
const reports: AdbTunnelReportInit[] = [];
const states = new Map<string, agentv1.DeviceState>();

before(async () => {
  phone = await startVirtualPhone({ serial: 'dev_1', host: '127.0.0.1', model: 'Tunnel Phone' });
  const auth = new StreamAuth({ hostId: 'host_a' });
  auth.setKeys([create(agentv1.StreamTokenKeySchema, { keyId: key.keyId, publicKey: key.publicKey })]);
  tunnels = new AdbTunnels({
    verify: (t) => auth.verifyAdbTunnel(t),
    phones: {
      observed: (deviceId) => {
        const state = states.get(deviceId);
        return state === undefined ? undefined : create(agentv1.ObservedDeviceSchema, { deviceId, state });
      },
      adbEndpoint: (deviceId) =>
        states.get(deviceId) === agentv1.DeviceState.RUNNING
          ? { host: '127.0.0.1', port: phone.port }
          : undefined,
    },
    report: (r) => reports.push(r),
    registry,
    logger: pino({ level: 'silent' }),
  });
  server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket, head) => tunnels.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/adb`;
});

after(async () => {
  tunnels?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await phone?.close();
});

/** A CNXN packet as a host's adb sends it (24-byte header, then `host::\0`). */
function cnxn(): Buffer {
  const payload = Buffer.from('host::\0');
  const header = Buffer.alloc(24);
  const command = 0x4e584e43; // 'CNXN'
  header.writeUInt32LE(command, 0);
  header.writeUInt32LE(0x01000000, 4);
  header.writeUInt32LE(256 * 1024, 8);
  header.writeUInt32LE(payload.length, 12);
  header.writeUInt32LE(
    payload.reduce((sum, b) => sum + b, 0),
    16,
  );
  header.writeUInt32LE((command ^ 0xffffffff) >>> 0, 20);
  return Buffer.concat([header, payload]);
}

/** Opens a tunnel connection; resolves once open, or with the HTTP refusal. */
function open(
  headers: Record<string, string>,
  path = '',
): Promise<WebSocket | { status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url + path, { headers, perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', reject);
  });
}

async function connected(t: string): Promise<WebSocket> {
  const ws = await open({ authorization: `Bearer ${t}` });
  assert.ok(ws instanceof WebSocket, JSON.stringify(ws));
  return ws;
}

/** Sends CNXN through the tunnel and reads the phone's answer: its banner names its model. */
async function handshake(ws: WebSocket): Promise<string> {
  const chunks: Buffer[] = [];
  ws.on('message', (d: Buffer) => chunks.push(d));
  ws.send(cnxn());
  return waitFor(
    'the phone’s CNXN through the tunnel',
    () => Buffer.concat(chunks).toString('latin1'),
    (text) => text.includes('ro.product.model=Tunnel Phone'),
  );
}

const closed = (ws: WebSocket) =>
  new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );

test('refused before the upgrade, with the reason: no token, another host, a stream token, a phone not running', async () => {
  states.set('dev_1', agentv1.DeviceState.RUNNING);
  states.set('dev_2', agentv1.DeviceState.STOPPED);
  assert.deepEqual(await open({}), {
    status: 401,
    body: 'an ADB tunnel token is required (Authorization: Bearer)\n',
  });
  assert.deepEqual(await open({ authorization: `Bearer ${await token({ hostId: 'host_b' })}` }), {
    status: 401,
    body: 'the ADB tunnel token is for another host\n',
  });
  const streamToken = await signStreamToken(key, {
    sessionId: 'strm_1',
    deviceId: 'dev_1',
    hostId: 'host_a',
    tenantId: 'tnt_1',
    rights: 'control',
    expiresAt: claims.expiresAt,
  });
  assert.deepEqual(await open({ authorization: `Bearer ${streamToken}` }), {
    status: 401,
    body: 'the ADB tunnel token is not valid\n',
  });
  assert.deepEqual(await open({ authorization: `Bearer ${await token({ deviceId: 'dev_2' })}` }), {
    status: 409,
    body: 'phone dev_2 is STOPPED, not RUNNING\n',
  });
  assert.equal(tunnels.size, 0);
  assert.equal(reports.length, 0, 'a refusal is no connection');
});

test('the phone’s adbd answers through the tunnel (token in the query too); a client close is reported with its bytes', async () => {
  states.set('dev_1', agentv1.DeviceState.RUNNING);
  reports.length = 0;
  const viaQuery = await open({}, `?token=${await token()}`);
  assert.ok(viaQuery instanceof WebSocket);
  assert.match(await handshake(viaQuery), /^CNXN/);
  assert.equal(tunnels.size, 1);
  viaQuery.close();
  const ended = await waitFor(
    'the ENDED report',
    () => reports.find((r) => r.event === agentv1.AdbTunnelReport_Event.ENDED),
    (r) => r !== undefined,
  );
  const opened = reports.find((r) => r.event === agentv1.AdbTunnelReport_Event.OPENED);
  assert.equal(opened?.clientAddress, '127.0.0.1');
  assert.equal(opened?.connectionId, ended?.connectionId);
  assert.equal(ended?.endReason, 'CLIENT_CLOSED');
  assert.equal(ended?.tunnelId, 'adbt_1');
  assert.equal(ended?.actor, 'key_1');
  assert.equal(ended?.bytesToDevice, BigInt(cnxn().length));
  assert.ok((ended?.bytesFromDevice ?? 0n) > 24n, 'the phone’s CNXN came back');
  assert.ok((ended?.durationMs ?? -1n) >= 0n);
  const metrics = await registry.getSingleMetricAsString('cphone_agent_adb_tunnel_bytes_total');
  assert.match(metrics, new RegExp(`direction="to_device"} ${cnxn().length}`));
  assert.equal(tunnels.size, 0);
});

test('a device revocation, a stopped phone and the agent stopping each end open connections at once', async () => {
  states.set('dev_1', agentv1.DeviceState.RUNNING);
  reports.length = 0;
  const a = await connected(await token());
  await handshake(a);
  const aClosed = closed(a);
  assert.equal(tunnels.end({ deviceId: 'dev_9' }, 'DEVICE_STOPPED', 'x'), 0, 'another device’s revocation');
  assert.equal(tunnels.end({ deviceId: 'dev_1' }, 'DEVICE_STOPPED', 'the phone was stopped'), 1);
  assert.deepEqual(await aClosed, { code: 4001, reason: 'the phone was stopped' });

  const b = await connected(await token({ tunnelId: 'adbt_2' }));
  const bClosed = closed(b);
  states.set('dev_1', agentv1.DeviceState.STOPPED);
  tunnels.end({ deviceId: 'dev_1' }, 'PHONE_NOT_RUNNING', 'the phone is stopped');
  assert.equal((await bClosed).code, 4001);

  states.set('dev_1', agentv1.DeviceState.RUNNING);
  const c = await connected(await token({ tunnelId: 'adbt_3' }));
  const cClosed = closed(c);
  tunnels.close();
  assert.equal((await cClosed).code, 1001);
  assert.deepEqual(
    reports
      .filter((r) => r.event === agentv1.AdbTunnelReport_Event.ENDED)
      .map((r) => [r.tunnelId, r.endReason]),
    [
      ['adbt_1', 'DEVICE_STOPPED'],
      ['adbt_2', 'PHONE_NOT_RUNNING'],
      ['adbt_3', 'AGENT_STOPPING'],
    ],
  );
  assert.deepEqual(await open({ authorization: `Bearer ${await token()}` }), {
    status: 503,
    body: 'the agent is stopping\n',
  });
});
