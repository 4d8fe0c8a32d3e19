// Debian's adb (the real host side of ADB) against the virtual phone: proves the phone speaks real
// ADB — handshake, AUTH, shell v2 exit codes, sync push/pull, streamed install.
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ADB, AdbHost } from './adb-cli-host.js';
import { startVirtualPhone, type VirtualPhone } from './index.js';

const TEST_APK = new URL('../../fixtures/test-app.apk', import.meta.url).pathname;

before(() => {
  assert.ok(
    existsSync(ADB),
    `${ADB} is missing: install Debian's adb (apt-get install -y adb) to run the interop tests`,
  );
});

describe('adb CLI against the virtual phone (no auth)', () => {
  let phone: VirtualPhone;
  let host: AdbHost;
  let serial: string;

  before(async () => {
    phone = await startVirtualPhone({ serial: 'cli-1', model: 'Interop Phone' });
    host = new AdbHost();
    serial = phone.address;
    assert.match(await host.text(['connect', serial]), /connected to/);
    assert.equal(await host.waitForState(serial, 'device'), 'device');
  });
  after(async () => {
    await host?.dispose();
    await phone?.close();
  });

  test('shell echo', async () => {
    assert.equal(await host.text(['-s', serial, 'shell', 'echo', 'hi']), 'hi\n');
  });

  test('shell exit codes come back through shell v2', async () => {
    const result = await host.run(['-s', serial, 'shell', 'exit 3']);
    assert.equal(result.code, 3);
    const missing = await host.run(['-s', serial, 'shell', 'no-such-tool']);
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /no-such-tool: inaccessible or not found/);
  });

  test('getprop', async () => {
    assert.equal(await host.text(['-s', serial, 'shell', 'getprop', 'ro.product.model']), 'Interop Phone\n');
    assert.equal(await host.text(['-s', serial, 'shell', 'getprop', 'sys.boot_completed']), '1\n');
  });

  test('push then pull returns identical bytes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cphone-push-'));
    try {
      const data = randomBytes(300_000);
      writeFileSync(join(dir, 'in.bin'), data);
      await host.text(['-s', serial, 'push', join(dir, 'in.bin'), '/sdcard/Download/in.bin']);
      assert.equal(phone.device.fs.stat('/sdcard/Download/in.bin')?.type, 'file');
      await host.text(['-s', serial, 'pull', '/sdcard/Download/in.bin', join(dir, 'out.bin')]);
      assert.ok(readFileSync(join(dir, 'out.bin')).equals(data));
      assert.match(await host.text(['-s', serial, 'shell', 'ls', '/sdcard/Download']), /^in\.bin$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('install the test APK; pm lists it', async () => {
    assert.match(await host.text(['-s', serial, 'install', TEST_APK]), /Success/);
    assert.match(
      await host.text(['-s', serial, 'shell', 'pm', 'list', 'packages']),
      /^package:dev\.cphone\.testapp$/m,
    );
    const pkg = phone.installedPackages().find((p) => p.packageName === 'dev.cphone.testapp');
    assert.deepEqual([pkg?.versionCode, pkg?.versionName], [3, '1.2.0']);
  });

  test('screencap -p through exec-out is a PNG of the screen size', async () => {
    const png = (await host.run(['-s', serial, 'exec-out', 'screencap', '-p'])).stdout;
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.equal(png.toString('latin1', 12, 16), 'IHDR');
    assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [720, 1280]);
  });

  test('input tap is recorded on the phone', async () => {
    await host.text(['-s', serial, 'shell', 'input', 'tap', '12', '34']);
    assert.deepEqual(phone.events.input.at(-1), { kind: 'tap', x: 12, y: 34 });
  });
});

describe('adb CLI against a phone that requires AUTH', () => {
  let host: AdbHost;

  before(async () => {
    host = new AdbHost();
    // adb keygen writes adbkey + adbkey.pub where the server will look for them.
    mkdirSync(join(host.home, '.android'), { recursive: true });
    await host.text(['keygen', join(host.home, '.android', 'adbkey')]);
  });
  after(async () => host?.dispose());

  test('an allow-listed key authenticates by signature', async () => {
    const pub = readFileSync(join(host.home, '.android', 'adbkey.pub'), 'utf8');
    const phone = await startVirtualPhone({
      serial: 'cli-auth-1',
      auth: { mode: 'allow-list', authorizedKeys: [pub] },
    });
    try {
      await host.text(['connect', phone.address]);
      assert.equal(await host.waitForState(phone.address, 'device'), 'device');
      assert.equal(await host.text(['-s', phone.address, 'shell', 'echo', 'signed']), 'signed\n');
    } finally {
      await host.run(['disconnect', phone.address]);
      await phone.close();
    }
  });

  test('an unknown key stays unauthorized on an allow-list phone', async () => {
    const phone = await startVirtualPhone({
      serial: 'cli-auth-2',
      auth: { mode: 'allow-list', authorizedKeys: [] },
    });
    try {
      await host.text(['connect', phone.address]);
      assert.equal(await host.waitForState(phone.address, 'unauthorized', 5000), 'unauthorized');
      const result = await host.run(['-s', phone.address, 'shell', 'echo', 'x']);
      assert.notEqual(result.code, 0);
    } finally {
      await host.run(['disconnect', phone.address]);
      await phone.close();
    }
  });

  test('accept-any mode trusts the public key the host offers', async () => {
    const phone = await startVirtualPhone({ serial: 'cli-auth-3', auth: { mode: 'accept-any' } });
    try {
      await host.text(['connect', phone.address]);
      assert.equal(await host.waitForState(phone.address, 'device'), 'device');
      assert.equal(await host.text(['-s', phone.address, 'shell', 'getprop', 'ro.serialno']), 'cli-auth-3\n');
    } finally {
      await host.run(['disconnect', phone.address]);
      await phone.close();
    }
  });
});
