// The agent's ADB client (host-agent/src/adb) against real virtual phones over TCP: AUTH with the
// agent's persisted key, boot waits, shell v2, installs, screenshots, input, files, props,
// logcat, reboot and reconnects.
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '@cphone/proto/testing';
import pino from 'pino';
import { startVirtualPhone, type VirtualPhone } from '../virtual-phone/index.js';
import {
  AdbInstallError,
  AdbPool,
  AdbSizeLimitError,
  AdbUnavailableError,
  type DeviceAdb,
  FileCredentialStore,
  MemoryCredentialStore,
} from './index.js';

const FIXTURE_APK = new URL('../../fixtures/test-app.apk', import.meta.url);
/** A key made up front: generating one inside the AUTH exchange would eat into connectTimeoutMs. */
function agentKey(): MemoryCredentialStore {
  const store = new MemoryCredentialStore();
  store.generateKey();
  return store;
}
const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');

describe('agent ADB client against a phone that trusts only the agent key', () => {
  let dataDir: string;
  let store: FileCredentialStore;
  let phone: VirtualPhone;
  let pool: AdbPool;
  let adb: DeviceAdb;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'agent-adb-'));
    store = await FileCredentialStore.open({ dataDir });
    phone = await startVirtualPhone({
      serial: 'agent-adb-1',
      model: 'Agent Phone',
      bootDelayMs: 300,
      screen: { width: 540, height: 960, dpi: 240 },
      auth: { mode: 'allow-list', authorizedKeys: [store.publicKey] },
    });
    pool = new AdbPool({ credentialStore: store, connectTimeoutMs: 2000 });
    adb = pool.device(phone);
  });
  after(async () => {
    await pool?.close();
    await phone?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  test('waitForBoot resolves once the boot delay passed', async () => {
    await pool.waitForBoot(phone, AbortSignal.timeout(10_000));
    assert.equal(phone.device.booted, true);
  });

  test('the key persists in the data dir as adbkey (PEM, 0600) and reopens to the same identity', async () => {
    const { stat } = await import('node:fs/promises');
    assert.match(await readFile(join(dataDir, 'adbkey'), 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
    assert.equal((await stat(join(dataDir, 'adbkey'))).mode & 0o777, 0o600);
    const again = await FileCredentialStore.open({ dataDir });
    assert.equal(again.publicKey, store.publicKey);
    assert.equal((await readFile(join(dataDir, 'adbkey.pub'), 'utf8')).trim(), store.publicKey);
  });

  test('shell separates stdout and stderr and returns the exit code', async () => {
    const result = await adb.shell('echo out; nosuchcmd; exit 7');
    assert.equal(text(result.stdout), 'out\n');
    assert.equal(text(result.stderr), '/system/bin/sh: nosuchcmd: inaccessible or not found\n');
    assert.equal(result.exitCode, 7);
    assert.equal(result.truncated, false);
  });

  test('output past maxOutputBytes is cut and flagged, and the connection keeps working', async () => {
    const result = await adb.shell(`echo ${'x'.repeat(5000)}`, { maxOutputBytes: 100 });
    assert.equal(result.stdout.byteLength, 100);
    assert.equal(result.truncated, true);
    assert.equal(result.exitCode, 0);
    assert.equal(text((await adb.shell('echo still')).stdout), 'still\n');
  });

  test('a command over its timeout is killed and reported as timed out', async () => {
    const result = await adb.shell('echo started; sleep 30', { timeoutMs: 200 });
    assert.equal(result.timedOut, true);
    assert.equal(result.exitCode, -1);
    assert.equal(text(result.stdout), 'started\n', 'output before the kill is kept');
    assert.equal(text((await adb.shell('echo after')).stdout), 'after\n');
  });

  test('an aborted shell throws the abort reason', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('stop now')), 100);
    await assert.rejects(adb.shell('sleep 30', { signal: controller.signal }), /stop now/);
  });

  test('install pushes, runs pm install and reads the package name; the staging file is gone', async () => {
    const result = await adb.install({ path: FIXTURE_APK.pathname }, { grantPermissions: true });
    assert.equal(result.packageName, 'dev.cphone.testapp');
    assert.ok(phone.installedPackages().some((p) => p.packageName === 'dev.cphone.testapp'));
    const listed = await adb.shell('pm list packages -3');
    assert.match(text(listed.stdout), /^package:dev\.cphone\.testapp$/m);
    const tmp = await adb.shell('ls /data/local/tmp');
    assert.doesNotMatch(text(tmp.stdout), /cphone-.*\.apk/);
  });

  test('a broken APK fails with the parsed pm reason', async () => {
    await assert.rejects(adb.install({ bytes: new Uint8Array(randomBytes(300)) }), (error: unknown) => {
      assert.ok(error instanceof AdbInstallError);
      assert.equal(error.failureReason, 'INSTALL_FAILED_INVALID_APK');
      assert.match(error.detail, /Failed to parse APK/);
      return true;
    });
  });

  test('screenshot returns a PNG whose size is the screen', async () => {
    const shot = await adb.screenshot();
    assert.deepEqual([shot.width, shot.height], [540, 960]);
    assert.deepEqual([...shot.png.subarray(1, 4)], [...Buffer.from('PNG')]);
  });

  test('input actions reach the phone in order, text quoted for the shell', async () => {
    const tricky = `it's "quoted"; echo $HOME & done`;
    const injected = await adb.input([
      { kind: 'tap', x: 10, y: 20 },
      { kind: 'swipe', fromX: 1, fromY: 2, toX: 3, toY: 4, durationMs: 500 },
      { kind: 'key', keycode: 4 },
      { kind: 'text', text: tricky },
    ]);
    assert.equal(injected, 4);
    assert.deepEqual(phone.events.input.slice(-4), [
      { kind: 'tap', x: 10, y: 20 },
      { kind: 'swipe', x1: 1, y1: 2, x2: 3, y2: 4, durationMs: 500 },
      { kind: 'keyevent', key: '4', longpress: false },
      { kind: 'text', text: tricky },
    ]);
    await assert.rejects(adb.input([{ kind: 'text', text: 'line\nbreak' }]), /control characters/);
  });

  test('push then pull returns the same bytes; pull above maxBytes is refused', async () => {
    const data = new Uint8Array(randomBytes(300_000));
    assert.equal(await adb.push(data, '/data/local/tmp/round.bin', { mode: 0o600 }), data.byteLength);
    assert.deepEqual(
      Buffer.from(await adb.pull('/data/local/tmp/round.bin', { maxBytes: 1_000_000 })),
      Buffer.from(data),
    );
    await assert.rejects(adb.pull('/data/local/tmp/round.bin', { maxBytes: 1000 }), AdbSizeLimitError);
    await assert.rejects(adb.pull('/data/local/tmp/missing.bin', { maxBytes: 1000 }), /missing\.bin/);
  });

  test('getprop returns the asked keys, omitting unset ones; all without keys', async () => {
    const props = await adb.getprop(['ro.product.model', 'no.such.prop']);
    assert.deepEqual([...props], [['ro.product.model', 'Agent Phone']]);
    const all = await adb.getprop();
    assert.equal(all.get('sys.boot_completed'), '1');
    assert.ok(all.size > 5);
  });

  test('logcat dump keeps the newest lines; the stream follows new lines until aborted', async () => {
    for (let i = 0; i < 5; i++) phone.device.logcat.log('I', 'AgentTest', `line ${i}`);
    const dump = await adb.logcat({ lines: 2 });
    assert.equal(dump.truncated, true);
    assert.deepEqual(
      dump.text
        .trim()
        .split('\n')
        .map((l) => l.replace(/^.*AgentTest\s*:\s*/, '')),
      ['line 3', 'line 4'],
    );

    const logcat = phone.device.logcat;
    const subscribe = logcat.subscribe;
    const subscribed = new Promise<void>((resolve) => {
      logcat.subscribe = (listener) => {
        logcat.subscribe = subscribe;
        const unsubscribe = subscribe.call(logcat, listener);
        resolve();
        return unsubscribe;
      };
    });
    const controller = new AbortController();
    const seen: string[] = [];
    const following = (async () => {
      for await (const line of adb.logcatStream({ signal: controller.signal })) {
        if (line.includes('streamed')) {
          seen.push(line);
          controller.abort();
        }
      }
    })();
    // A line logged before the phone's logcat follows new lines would be in neither the dump nor
    // the stream: log it once the stream has subscribed.
    await subscribed;
    phone.device.logcat.log('W', 'AgentTest', 'streamed line');
    await following;
    assert.equal(seen.length, 1);
    assert.match(seen[0]!, /AgentTest.*streamed line/);
  });

  test('reboot drops the connection; waitForBoot waits for the new boot; commands work again', async () => {
    await adb.reboot();
    await pool.waitForBoot(phone, AbortSignal.timeout(10_000));
    assert.equal(phone.device.booted, true);
    assert.equal(text((await adb.shell('echo back')).stdout), 'back\n');
  });

  test('concurrent operations on one device all complete', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => adb.shell(`echo ${i}`)));
    assert.deepEqual(
      results.map((r) => text(r.stdout)),
      Array.from({ length: 10 }, (_, i) => `${i}\n`),
    );
  });
});

describe('agent ADB client: unreachable, restarted and untrusting phones', () => {
  test('waitForBoot tolerates refused connections until the phone listens', async () => {
    // A port that refuses connections: one a phone listened on and let go. (The phone starts again
    // on it below, as a phone restarted in place does.)
    const earlier = await startVirtualPhone({ serial: 'late', auth: { mode: 'accept-any' } });
    const port = earlier.port;
    await earlier.close();
    const logged: { msg?: string; err?: { message?: string } }[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
    const pool = new AdbPool({ credentialStore: agentKey(), connectTimeoutMs: 1000, logger });
    let phone: VirtualPhone | undefined;
    try {
      const waiting = pool.waitForBoot({ host: '127.0.0.1', port }, AbortSignal.timeout(10_000));
      await waitFor(
        'a boot probe refused',
        () => logged.filter((l) => l.msg === 'boot probe failed; retrying').map((l) => l.err?.message),
        (errors) => errors.some((m) => m?.includes('ECONNREFUSED')),
      );
      phone = await startVirtualPhone({
        serial: 'late',
        port,
        bootDelayMs: 200,
        auth: { mode: 'accept-any' },
      });
      await waiting;
      assert.equal(phone.device.booted, true);
    } finally {
      await pool.close();
      await phone?.close();
    }
  });

  test('after the phone restarts on the same port the client reconnects', async () => {
    const pool = new AdbPool({ credentialStore: agentKey(), connectTimeoutMs: 1000 });
    let phone = await startVirtualPhone({ serial: 'restart', auth: { mode: 'accept-any' } });
    const endpoint = { host: phone.host, port: phone.port };
    try {
      const adb = pool.device(endpoint);
      assert.equal(text((await adb.shell('echo one')).stdout), 'one\n');
      await phone.close();
      await assert.rejects(adb.shell('echo down'), AdbUnavailableError);
      phone = await startVirtualPhone({
        serial: 'restart',
        port: endpoint.port,
        auth: { mode: 'accept-any' },
      });
      assert.equal(text((await adb.shell('echo two')).stdout), 'two\n');
    } finally {
      await pool.close();
      await phone.close();
    }
  });

  test('a phone that does not trust the key is unavailable, not a hang', async () => {
    const phone = await startVirtualPhone({
      serial: 'strict',
      auth: { mode: 'allow-list', authorizedKeys: [] },
    });
    const pool = new AdbPool({ credentialStore: agentKey(), connectTimeoutMs: 500 });
    try {
      await assert.rejects(pool.device(phone).shell('echo hi'), (error: unknown) => {
        assert.ok(error instanceof AdbUnavailableError);
        assert.match(error.message, /trust/);
        return true;
      });
    } finally {
      await pool.close();
      await phone.close();
    }
  });

  test('without shell v2 the exec fallback still returns the output', async () => {
    const phone = await startVirtualPhone({ serial: 'exec', auth: { mode: 'accept-any' } });
    const pool = new AdbPool({ credentialStore: agentKey(), shellV2: false });
    try {
      const result = await pool.device(phone).shell('echo via exec');
      assert.equal(text(result.stdout), 'via exec\n');
      assert.equal(result.stderr.byteLength, 0);
    } finally {
      await pool.close();
      await phone.close();
    }
  });
});
