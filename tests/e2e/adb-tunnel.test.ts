// Remote ADB end to end: the real control plane (PGlite, or PostgreSQL with DATABASE_URL) issues an
// ADB tunnel through the public API to a key of the phone's tenant; the CLI's library listens on a
// local port and carries each connection over WSS (the agent's generated CA) to the real agent,
// which dials its virtual phone's adbd. Debian's adb connects, reads a property, pushes 16 MiB and
// installs the test APK through it; @yume-chan/adb and adb-scrcpy start scrcpy through it and receive
// video. Refusals, a stopped phone ending the tunnel, and the audit rows are checked too.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DescService } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { type LocalAdbTunnel, openAdbTunnel } from '@cphone/cli/adb-tunnel';
import { bearerTransport } from '@cphone/control-plane/testing';
import { type Agent, connectAdbTcp, FileCredentialStore } from '@cphone/host-agent';
import { DebianAdb } from '@cphone/host-agent/testing';
import {
  ApiKeyService,
  DeviceService,
  DeviceState,
  HostState,
  Role,
  StreamRights,
  TenantKind,
  TenantService,
} from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { Adb, AdbDaemonTransport } from '@yume-chan/adb';
import { AdbScrcpyClient, AdbScrcpyOptions3_3_3 } from '@yume-chan/adb-scrcpy';
import { ScrcpyInstanceId } from '@yume-chan/scrcpy';
import { ReadableStream } from '@yume-chan/stream-extra';
import WebSocket from 'ws';
import { type Harness, runningPhone, startHarness, startPhones } from './harness.js';

const TEST_APK = new URL('../../host-agent/fixtures/test-app.apk', import.meta.url).pathname;

let h: Harness;
let agent: Agent;
let phones: Awaited<ReturnType<typeof startPhones>>;
let adb: DebianAdb;
let ca: string;
let ownerKey = '';
let deviceId = '';
let otherDeviceId = '';
let workDir = '';

const clientWith = <S extends DescService>(service: S, token: string) =>
  createClient(service, bearerTransport(h.plane.httpUrl, token));

before(async () => {
  h = await startHarness();
  phones = await startPhones(h);
  agent = await h.startAgent({ deps: { runtime: phones.runtime } });
  await h.waitForHost(HostState.READY, true);
  ca = await readFile(join(h.agentDataDir, 'stream-tls', 'ca.pem'), 'utf8');
  deviceId = await runningPhone(h, 'debugged');
  otherDeviceId = await runningPhone(h, 'other');
  const key = await h.client(ApiKeyService).createApiKey({
    tenantId: h.tenantId,
    role: Role.TENANT_USER,
    displayName: 'developer',
  });
  ownerKey = key.secret;
  adb = new DebianAdb();
  workDir = await mkdtemp(join(tmpdir(), 'cphone-e2e-adb-tunnel-'));
});

after(async () => {
  await adb?.dispose();
  await agent?.close();
  await phones?.runtime.close();
  await h?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

const md5 = (bytes: Uint8Array) => createHash('md5').update(bytes).digest('hex');

describe('adb through the platform', () => {
  let tunnel: LocalAdbTunnel;
  let serial = '';
  const errors: Error[] = [];

  before(async () => {
    tunnel = await openAdbTunnel({
      transport: bearerTransport(h.plane.httpUrl, ownerKey),
      deviceId,
      ca,
      onError: (e) => errors.push(e),
    });
    serial = tunnel.address;
    assert.match(await adb.text(['connect', serial]), /connected to/);
    await waitFor(
      'adb to see the phone',
      () => adb.state(serial),
      (s) => s === 'device',
    );
  });

  after(async () => {
    await tunnel?.close();
  });

  test('adb shell reads the phone’s model, as the API does', async () => {
    const viaTunnel = await adb.text(['-s', serial, 'shell', 'getprop', 'ro.product.model']);
    const viaApi = await h.devices.execShell({ deviceId, command: 'getprop ro.product.model' });
    assert.equal(viaTunnel, Buffer.from(viaApi.stdout).toString());
    assert.ok(viaTunnel.trim().length > 0);
  });

  test('adb push of 16 MiB lands on the phone byte for byte', async () => {
    const data = randomBytes(16 << 20);
    const file = join(workDir, 'big.bin');
    await writeFile(file, data);
    assert.match(await adb.text(['-s', serial, 'push', file, '/data/local/tmp/big.bin']), /1 file pushed/);
    // Checked as a user would: the phone's md5sum and ls, through the same tunnel.
    assert.equal(
      await adb.text(['-s', serial, 'shell', 'md5sum', '/data/local/tmp/big.bin']),
      `${md5(data)}  /data/local/tmp/big.bin\n`,
    );
    assert.ok(
      (await adb.text(['-s', serial, 'shell', 'ls', '-l', '/data/local/tmp/big.bin'])).includes(
        String(16 << 20),
      ),
    );
  });

  test('adb install of the test APK goes through; pm lists the package', async () => {
    assert.match(await adb.text(['-s', serial, 'install', TEST_APK]), /Success/);
    assert.match(
      await adb.text(['-s', serial, 'shell', 'pm', 'list', 'packages']),
      /package:dev\.cphone\.testapp/,
    );
  });

  test('@yume-chan/adb over the local port: shell, then scrcpy sends video', async () => {
    const { connection } = await connectAdbTcp('127.0.0.1', tunnel.port);
    const transport = await AdbDaemonTransport.authenticate({
      serial,
      connection,
      credentialStore: await FileCredentialStore.open({ dataDir: join(workDir, 'yume') }),
    });
    const client = new Adb(transport);
    try {
      assert.equal(
        await client.getProp('ro.product.model'),
        (await adb.text(['-s', serial, 'shell', 'getprop', 'ro.product.model'])).trim(),
      );
      const jar = '/data/local/tmp/scrcpy-server.jar';
      // The virtual phone only checks that the jar is there; its bytes are not run.
      await AdbScrcpyClient.pushServer(
        client,
        new ReadableStream({
          start(c) {
            c.enqueue(new Uint8Array([0x50, 0x4b, 3, 4]));
            c.close();
          },
        }),
        jar,
      );
      const scrcpy = await AdbScrcpyClient.start(
        client,
        jar,
        new AdbScrcpyOptions3_3_3<boolean>({
          tunnelForward: true,
          scid: ScrcpyInstanceId.random(),
          audio: false,
        }),
      );
      try {
        const video = await scrcpy.videoStream;
        assert.ok(video, 'video is on');
        const reader = video.stream.getReader();
        let data = false;
        while (!data) {
          const next = await reader.read();
          assert.equal(next.done, false, 'the video stream ended before a frame');
          data = next.value?.type === 'data';
        }
        reader.releaseLock();
        assert.ok(video.metadata.width && video.metadata.width > 0);
      } finally {
        await scrcpy.close();
      }
    } finally {
      await client.close();
    }
  });

  test('refused: another tenant’s key (NOT_FOUND), a token edited to name another phone, a stream token', async () => {
    const stranger =
      (await h.client(TenantService).createTenant({ kind: TenantKind.RESELLER, displayName: 'stranger' }))
        .tenant?.tenantId ?? '';
    const strangerKey = (
      await h
        .client(ApiKeyService)
        .createApiKey({ tenantId: stranger, role: Role.TENANT_ADMIN, displayName: 'x' })
    ).secret;
    await assert.rejects(
      clientWith(DeviceService, strangerKey).createAdbTunnel({ deviceId }),
      (e: unknown) => ConnectError.from(e).code === Code.NotFound,
    );
    await assert.rejects(
      openAdbTunnel({ transport: bearerTransport(h.plane.httpUrl, strangerKey), deviceId, ca }),
      (e: unknown) => ConnectError.from(e).code === Code.NotFound,
    );

    const owner = clientWith(DeviceService, ownerKey);
    const grant = (await owner.createAdbTunnel({ deviceId })).adbTunnel;
    assert.ok(grant);
    const [header, payload, signature] = grant.token.split('.');
    const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString());
    const forged = [
      header,
      Buffer.from(JSON.stringify({ ...claims, dev: otherDeviceId })).toString('base64url'),
      signature,
    ].join('.');
    const stream = (await owner.createStreamSession({ deviceId, rights: StreamRights.CONTROL }))
      .streamSession;
    for (const [token, reason] of [
      [forged, 'the ADB tunnel token is not valid'],
      [stream?.token ?? '', 'the ADB tunnel token is not valid'],
    ] as const) {
      const refusal = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const ws = new WebSocket(grant.url, { headers: { authorization: `Bearer ${token}` }, ca });
        ws.once('open', () => reject(new Error('the agent accepted the token')));
        ws.once('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (d: Buffer) => {
            body += d;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.trim() }));
        });
      });
      assert.deepEqual(refusal, { status: 401, body: reason });
    }
  });

  test('each connection is in the audit trail with its duration; stopping the phone ends the tunnel', async () => {
    assert.ok(tunnel.connections >= 1, 'adb holds its connection open');
    assert.deepEqual(
      errors.map((e) => e.message),
      [],
      'nothing failed while the phone ran',
    );
    await h.devices.stopDevice({ deviceId });
    await waitFor(
      'the tunnel’s connections ended',
      () => tunnel.connections,
      (n) => n === 0,
    );
    await waitFor(
      'adb to lose the phone',
      () => adb.state(serial),
      (s) => s !== 'device',
    );
    await h.waitForState(deviceId, DeviceState.STOPPED);
    const rows = await waitFor(
      'the connections’ audit rows',
      async () => {
        await h.plane.deps.audit.flush();
        return h.plane.deps.db
          .selectFrom('audit_log')
          .select(['method', 'tenant_id', 'detail'])
          .where('method', 'in', ['AdbTunnel/Connected', 'AdbTunnel/Disconnected'])
          .where('resource', 'like', `%device_id=${deviceId}%`)
          .orderBy('id')
          .execute();
      },
      (r) => r.filter((x) => x.method === 'AdbTunnel/Disconnected').length >= 2,
    );
    assert.ok(rows.every((r) => r.tenant_id === h.tenantId));
    const ends = rows
      .filter((r) => r.method === 'AdbTunnel/Disconnected')
      .map((r) => r.detail as Record<string, unknown>);
    assert.ok(
      ends.every((d) => typeof d.duration_ms === 'number' && d.duration_ms >= 0),
      JSON.stringify(ends),
    );
    // The adb server's connection carried the 16 MiB push and ended with the phone's stop.
    const adbConnection = ends.find((d) => Number(d.bytes_to_device) > 16 << 20);
    assert.ok(adbConnection, JSON.stringify(ends));
    assert.match(String(adbConnection.end_reason), /DEVICE_STOPPED|PHONE_NOT_RUNNING/);
    const issued = await h.plane.deps.db
      .selectFrom('audit_log')
      .select('outcome')
      .where('method', '=', 'DeviceService/CreateAdbTunnel')
      .where('resource', '=', `deviceId=${deviceId}`)
      .execute();
    assert.ok(issued.some((r) => r.outcome === 'ok'));
    // The adb server dials a lost device again: once the phone stopped, the agent refuses those
    // connections (the stop revoked the token, or the phone is not running) and says so.
    for (const e of errors) {
      assert.match(e.message, /^the agent refused the tunnel \(HTTP (401|409)\): .*(revoked|not RUNNING)/);
    }
  });
});
