// The agent's command executor: Commands as the control plane sends them, run on a virtual phone,
// with artifacts served and received by a local HTTP server that checks the host credential.
import * as assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { agentv1 } from '@cphone/proto';
import { startVirtualPhone, type VirtualPhone } from '../virtual-phone/index.js';
import { AdbCommandExecutor, AdbPool, MemoryCredentialStore } from './index.js';

const CREDENTIAL = 'host-secret-1';
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Serves GET /a/<name> from `files` and takes PUT /u/<name> into `uploads`, both behind the bearer. */
class ArtifactServer {
  readonly files = new Map<string, Uint8Array>();
  readonly uploads = new Map<string, Buffer>();
  #server: Server | undefined;
  base = '';

  async start(): Promise<void> {
    this.#server = createServer(async (req, res) => {
      if (req.headers.authorization !== `Bearer ${CREDENTIAL}`) {
        res.writeHead(401).end();
        return;
      }
      const [, area, name = ''] = (req.url ?? '').split('/');
      if (req.method === 'GET' && area === 'a' && this.files.has(name)) {
        res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(this.files.get(name));
        return;
      }
      if (req.method === 'PUT' && area === 'u') {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        this.uploads.set(name, Buffer.concat(chunks));
        res.writeHead(204).end();
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => this.#server?.listen(0, '127.0.0.1', resolve));
    const address = this.#server.address();
    if (typeof address !== 'object' || !address) throw new Error('no address');
    this.base = `http://127.0.0.1:${address.port}`;
  }

  async close(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()));
  }
}

describe('AdbCommandExecutor on a virtual phone', () => {
  let phone: VirtualPhone;
  let pool: AdbPool;
  let executor: AdbCommandExecutor;
  let apk: Uint8Array;
  const server = new ArtifactServer();
  let device: { deviceId: string; adb: { host: string; port: number } };
  let sequence = 0;

  const run = async (
    kind: MessageInitShape<typeof agentv1.CommandSchema>['kind'],
    deadlineInMs = 10_000,
  ): Promise<agentv1.CommandResult> => {
    const command = create(agentv1.CommandSchema, {
      commandId: `cmd-${++sequence}`,
      deviceId: device.deviceId,
      deadline: timestampFromDate(new Date(Date.now() + deadlineInMs)),
      ...(kind ? { kind } : {}),
    });
    const result = create(agentv1.CommandResultSchema, await executor.execute(command, device));
    assert.equal(result.commandId, command.commandId);
    assert.ok(result.finishedAt, 'finishedAt is set');
    return result;
  };

  before(async () => {
    const store = new MemoryCredentialStore();
    store.generateKey();
    phone = await startVirtualPhone({ serial: 'exec-1', auth: { mode: 'accept-any' } });
    device = { deviceId: 'dev-1', adb: { host: phone.host, port: phone.port } };
    pool = new AdbPool({ credentialStore: store, connectTimeoutMs: 2000 });
    executor = new AdbCommandExecutor({ pool, credential: () => CREDENTIAL });
    apk = new Uint8Array(await readFile(new URL('../../fixtures/test-app.apk', import.meta.url)));
    server.files.set('app.apk', apk);
    await server.start();
  });
  after(async () => {
    await pool?.close();
    await phone?.close();
    await server.close();
  });

  const installApp = (overrides: { url?: string; sha?: string; size?: number } = {}) =>
    ({
      case: 'installApp',
      value: {
        artifactSha256: overrides.sha ?? sha256(apk),
        sizeBytes: BigInt(overrides.size ?? apk.byteLength),
        downloadUrl: overrides.url ?? `${server.base}/a/app.apk`,
        grantRuntimePermissions: true,
      },
    }) as const;

  test('installApp downloads with the bearer credential, verifies and installs', async () => {
    const result = await run(installApp());
    assert.equal(result.code, 1, result.message);
    assert.equal(result.result.case, 'installApp');
    assert.equal(result.result.value?.packageName, 'dev.cphone.testapp');
    assert.ok(phone.installedPackages().some((p) => p.packageName === 'dev.cphone.testapp'));
  });

  test('installApp with a wrong hash or size is UNAVAILABLE and reaches no phone', async () => {
    const before = phone.events.listenerCount('package');
    const wrongSha = await run(installApp({ sha: sha256(new Uint8Array([1])) }));
    assert.equal(wrongSha.code, 8);
    assert.match(wrongSha.message, /sha256 is [0-9a-f]{64}, expected/);
    assert.equal(wrongSha.result.case, undefined);
    const wrongSize = await run(installApp({ size: apk.byteLength - 1 }));
    assert.equal(wrongSize.code, 8);
    assert.match(wrongSize.message, /more than the announced/);
    assert.equal(phone.events.listenerCount('package'), before);
  });

  test('installApp without the right credential or from a bad URL fails with a code', async () => {
    const denied = await new AdbCommandExecutor({ pool, credential: 'wrong' }).execute(
      create(agentv1.CommandSchema, { commandId: 'denied', kind: installApp() }),
      device,
    );
    assert.equal(denied.code, 8);
    assert.match(String(denied.message), /HTTP 401/);
    const badUrl = await run(installApp({ url: 'ftp://example/app.apk' }));
    assert.equal(badUrl.code, 2);
    assert.match(badUrl.message, /installApp\.downloadUrl/);
  });

  test('installApp of bytes pm refuses is ABORTED with the parsed reason', async () => {
    const junk = new Uint8Array(randomBytes(200));
    server.files.set('junk.apk', junk);
    const result = await run(
      installApp({ url: `${server.base}/a/junk.apk`, sha: sha256(junk), size: junk.byteLength }),
    );
    assert.equal(result.code, 9);
    assert.match(result.message, /INSTALL_FAILED_INVALID_APK/);
  });

  test('a deadline already passed is DEADLINE_EXCEEDED without touching the phone', async () => {
    const result = await run({ case: 'shell', value: { command: 'echo never' } }, -1000);
    assert.equal(result.code, 5);
  });

  test('a deadline reached while the command runs is DEADLINE_EXCEEDED', async () => {
    const result = await run({ case: 'shell', value: { command: 'sleep 30' } }, 300);
    assert.equal(result.code, 5);
    const next = await run({ case: 'shell', value: { command: 'echo alive' } });
    assert.equal(
      Buffer.from(next.result.case === 'shell' ? next.result.value.stdout : []).toString(),
      'alive\n',
    );
  });

  test('shell returns exit code, stderr and the truncation flag', async () => {
    const result = await run({
      case: 'shell',
      value: { command: `echo ${'y'.repeat(100)}; nosuch; exit 3`, maxOutputBytes: 60 },
    });
    assert.equal(result.code, 1);
    assert.equal(result.result.case, 'shell');
    const shell = result.result.value!;
    assert.equal(shell.exitCode, 3);
    assert.equal(shell.truncated, true);
    assert.equal(shell.stdout.byteLength, 60);
    assert.match(Buffer.from(shell.stderr).toString(), /nosuch/);
  });

  test('screenshot, getProp and logcat return their payloads', async () => {
    const shot = await run({ case: 'screenshot', value: {} });
    assert.equal(shot.result.case, 'screenshot');
    assert.deepEqual([shot.result.value?.widthPx, shot.result.value?.heightPx], [720, 1280]);
    const props = await run({ case: 'getProp', value: { keys: ['ro.product.model', 'unset.prop'] } });
    assert.deepEqual(props.result.case === 'getProp' ? props.result.value.properties : {}, {
      'ro.product.model': 'cphone Virtual',
    });
    phone.device.logcat.log('E', 'ExecTest', 'boom');
    const logcat = await run({ case: 'logcat', value: { maxLines: 1 } });
    assert.equal(logcat.result.case, 'logcat');
    assert.match(Buffer.from(logcat.result.value?.text ?? []).toString(), /ExecTest.*boom\n$/);
  });

  test('input injects events; a key-down alone is UNIMPLEMENTED', async () => {
    const ok = await run({
      case: 'input',
      value: {
        events: [
          { kind: { case: 'tap', value: { x: 5, y: 6 } } },
          { kind: { case: 'text', value: { text: 'hi there' } } },
        ],
      },
    });
    assert.equal(ok.code, 1, ok.message);
    assert.equal(ok.result.case === 'input' ? ok.result.value.injected : 0, 2);
    assert.deepEqual(phone.events.input.slice(-2), [
      { kind: 'tap', x: 5, y: 6 },
      { kind: 'text', text: 'hi there' },
    ]);
    const down = await run({
      case: 'input',
      value: { events: [{ kind: { case: 'key', value: { keycode: 4, action: agentv1.KeyAction.DOWN } } }] },
    });
    assert.equal(down.code, 7);
  });

  test('pushFile then pullFile round-trips through the artifact server; too large is RESOURCE_EXHAUSTED', async () => {
    const data = new Uint8Array(randomBytes(150_000));
    server.files.set('blob', data);
    const push = await run({
      case: 'pushFile',
      value: {
        artifactSha256: sha256(data),
        sizeBytes: BigInt(data.byteLength),
        downloadUrl: `${server.base}/a/blob`,
        remotePath: '/sdcard/blob.bin',
        mode: 0o600,
      },
    });
    assert.equal(push.code, 1, push.message);
    assert.equal(push.result.case === 'pushFile' ? push.result.value.sizeBytes : 0n, BigInt(data.byteLength));
    const pull = await run({
      case: 'pullFile',
      value: { remotePath: '/sdcard/blob.bin', maxBytes: 1_000_000n, uploadUrl: `${server.base}/u/blob` },
    });
    assert.equal(pull.code, 1, pull.message);
    assert.equal(pull.result.case === 'pullFile' ? pull.result.value.sha256 : '', sha256(data));
    assert.deepEqual(server.uploads.get('blob'), Buffer.from(data));
    const tooBig = await run({
      case: 'pullFile',
      value: { remotePath: '/sdcard/blob.bin', maxBytes: 1000n, uploadUrl: `${server.base}/u/small` },
    });
    assert.equal(tooBig.code, 6);
    assert.equal(server.uploads.has('small'), false);
  });

  test('an unreachable device is UNAVAILABLE; a command without a kind is INVALID_ARGUMENT', async () => {
    const gone = await executor.execute(
      create(agentv1.CommandSchema, { commandId: 'gone', kind: { case: 'screenshot', value: {} } }),
      { deviceId: 'dev-x', adb: { host: '127.0.0.1', port: 1 } },
    );
    assert.equal(gone.code, 8);
    const empty = await executor.execute(create(agentv1.CommandSchema, { commandId: 'empty' }), device);
    assert.equal(empty.code, 2);
  });
});
