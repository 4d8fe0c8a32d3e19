// Debian's adb against the virtual phone for what people run beyond the basics: logcat (dump and
// following with filters), shell scripts, the boot-wait loop, split installs, reverse, root, and a
// hostile packet that must not hurt other connections.
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '@cphone/proto/testing';
import { AdbCommand, encodePacket } from './adb/packet.js';
import { ADB, AdbHost } from './adb-cli-host.js';
import { startVirtualPhone, type VirtualPhone } from './index.js';

const fixture = (name: string): string => new URL(`../../fixtures/${name}`, import.meta.url).pathname;

before(() => {
  assert.ok(existsSync(ADB), `${ADB} is missing: install Debian's adb (apt-get install -y adb)`);
});

describe('adb CLI features against the virtual phone', () => {
  let phone: VirtualPhone;
  let host: AdbHost;
  let serial: string;
  const adb = (...args: string[]) => host.run(['-s', serial, ...args]);
  const text = (...args: string[]) => host.text(['-s', serial, ...args]);

  before(async () => {
    phone = await startVirtualPhone({ serial: 'cli-features' });
    host = new AdbHost();
    serial = phone.address;
    assert.match(await host.text(['connect', serial]), /connected to/);
    await host.waitForState(serial, 'device');
    await phone.waitForBoot();
  });
  after(async () => {
    await host?.dispose();
    await phone?.close();
  });

  test('adb logcat -d dumps the buffer; -s and tag:priority filters select lines', async () => {
    phone.device.logcat.log('W', 'DumpTag', 'dumped warning');
    phone.device.logcat.log('I', 'DumpTag', 'dumped info');
    phone.device.logcat.log('E', 'Other', 'other error');
    const all = await text('logcat', '-d');
    assert.match(all, / W DumpTag: dumped warning$/m);
    assert.match(all, / E Other: other error$/m);
    assert.equal(
      await text('logcat', '-d', '-v', 'tag', '-s', 'DumpTag'),
      'W/DumpTag: dumped warning\nI/DumpTag: dumped info\n',
    );
    assert.equal(
      await text('logcat', '-d', '-v', 'brief', 'DumpTag:W', '*:S'),
      'W/DumpTag( 1000): dumped warning\n',
    );
  });

  test('adb logcat follows new lines through a filter until the client is killed', async () => {
    phone.device.logcat.log('I', 'StreamTag', 'before start');
    const child = host.spawn(['-s', serial, 'logcat', '-v', 'tag', '-s', 'StreamTag']);
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    try {
      // The backlog arrives first: from then on the phone is following.
      await waitFor(
        'the backlog',
        () => out,
        (o) => o.includes('before start'),
      );
      phone.device.logcat.log('I', 'Hidden', 'filtered out');
      phone.device.logcat.log('W', 'StreamTag', 'written after start');
      await waitFor(
        'the new line',
        () => out,
        (o) => o.includes('W/StreamTag: written after start'),
      );
      assert.doesNotMatch(out, /filtered out/);
    } finally {
      child.kill();
      await once(child, 'exit');
    }
  });

  test('a script with variables, a loop, command substitution, redirections and grep', async () => {
    const script = [
      'n=0',
      'for p in $(pm list packages); do n=$((n + 1)); done',
      'echo "packages: $n" > /data/local/tmp/report.txt',
      'pm list packages | grep -c android >> /data/local/tmp/report.txt',
      'echo "to stderr" >&2',
      'if [ -f /data/local/tmp/report.txt ] && [[ $n -gt 3 ]]; then cat /data/local/tmp/report.txt; fi',
      'ls /nowhere 2>&1 | grep -q "No such" && echo "2>&1 piped"',
      'exit 7',
    ].join('\n');
    const result = await adb('shell', script);
    assert.equal(result.code, 7);
    assert.equal(result.stdout.toString(), 'packages: 4\n4\n2>&1 piped\n');
    assert.equal(result.stderr, 'to stderr\n');
  });

  test('pm list packages | grep and toybox commands', async () => {
    assert.equal(await text('shell', 'pm list packages | grep settings'), 'package:com.android.settings\n');
    assert.equal(await text('shell', 'echo hello | md5sum'), 'b1946ac92492d2347c6235b4d2611184  -\n');
    assert.equal(await text('shell', 'settings put global cphone_x 5; settings get global cphone_x'), '5\n');
    assert.equal(
      await text('shell', 'getprop ro.build.version.release; getprop ro.build.version.sdk'),
      '12\n31\n',
    );
    const abi = process.arch === 'arm64' ? 'arm64-v8a' : 'x86_64';
    assert.equal(await text('shell', 'getprop ro.product.cpu.abi'), `${abi}\n`);
  });

  test('adb install-multiple installs a base APK with its split through an install session', async () => {
    const out = await text('install-multiple', fixture('test-app.apk'), fixture('test-app-split.apk'));
    assert.match(out, /Success/);
    const pkg = phone.installedPackages().find((p) => p.packageName === 'dev.cphone.testapp');
    assert.deepEqual(pkg?.splits, ['config.xxhdpi']);
    assert.match(await text('shell', 'ls /data/app/dev.cphone.testapp-1'), /^split_config\.xxhdpi\.apk$/m);
  });

  test('adb reverse adds, lists and removes rules', async () => {
    assert.equal((await adb('reverse', 'tcp:8081', 'tcp:8082')).code, 0);
    assert.match(await text('reverse', '--list'), /^host-\d+ tcp:8081 tcp:8082$/m);
    const any = await text('reverse', 'tcp:0', 'tcp:9000');
    assert.match(any, /^\d+\n$/);
    assert.equal((await adb('reverse', '--remove', 'tcp:8081')).code, 0);
    const removed = await adb('reverse', '--remove', 'tcp:8081');
    assert.notEqual(removed.code, 0);
    assert.match(removed.stderr, /listener 'tcp:8081' not found/);
    assert.equal((await adb('reverse', '--remove-all')).code, 0);
    assert.doesNotMatch(await text('reverse', '--list'), /tcp:/);
  });

  test('a header claiming 128 MiB drops that connection at once; another stays served', async () => {
    const socket: Socket = connect(phone.port, phone.host);
    await once(socket, 'connect');
    // The phone resets the connection; only its closing matters here.
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const drained = () => new Promise<void>((resolve) => socket.once('drain', () => resolve()));
    const banner = new TextEncoder().encode('host::\0');
    socket.write(
      encodePacket({ command: AdbCommand.Connect, arg0: 0x01000001, arg1: 256 * 1024, payload: banner }),
    );
    await new Promise((resolve) => socket.once('data', resolve));
    const header = encodePacket({ command: AdbCommand.Write, arg0: 1, arg1: 1, payload: new Uint8Array(0) });
    new DataView(header.buffer).setUint32(12, 128 << 20, true);
    const before = process.memoryUsage().arrayBuffers;
    socket.write(header);
    // Keep sending payload bytes: the phone must close rather than read and keep them.
    const chunk = Buffer.alloc(1 << 20);
    let sent = 0;
    const sending = (async () => {
      while (!socket.destroyed && sent < 128 << 20) {
        if (!socket.write(chunk)) await Promise.race([drained(), closed]);
        sent += chunk.byteLength;
      }
    })();
    // Meanwhile another connection still gets answers.
    assert.equal(await text('shell', 'echo still-served'), 'still-served\n');
    await closed;
    await sending;
    assert.ok(sent < 128 << 20, `the phone read all ${sent} bytes instead of closing`);
    const grown = process.memoryUsage().arrayBuffers - before;
    assert.ok(grown < 64 << 20, `array buffers grew by ${grown} bytes`);
  });

  test('adb root restarts adbd as root; adb unroot back to shell', async () => {
    assert.match(await text('shell', 'id'), /^uid=2000\(shell\)/);
    const root = await adb('root');
    assert.equal(root.code, 0, root.stderr);
    assert.match(root.stdout.toString(), /restarting adbd as root/);
    await host.waitForState(serial, 'device');
    const id = await waitFor(
      'adb shell id as root',
      () => adb('shell', 'id'),
      (r) => r.code === 0,
    );
    assert.match(id.stdout.toString(), /^uid=0\(root\) gid=0\(root\)/);
    assert.match(await text('root'), /adbd is already running as root/);
    assert.match(await text('unroot'), /restarting adbd as non root/);
    await host.waitForState(serial, 'device');
    const back = await waitFor(
      'adb shell id as shell',
      () => adb('shell', 'id'),
      (r) => r.code === 0,
    );
    assert.match(back.stdout.toString(), /^uid=2000\(shell\)/);
  });
});

describe('the boot-wait loop through Debian adb', () => {
  test('while [[ -z $(getprop sys.boot_completed) ]] waits until the phone has booted', async () => {
    const phone = await startVirtualPhone({ serial: 'cli-boot', bootDelayMs: 1500 });
    const host = new AdbHost();
    try {
      await host.text(['connect', phone.address]);
      await host.waitForState(phone.address, 'device');
      assert.equal(phone.device.booted, false);
      const out = await host.text([
        '-s',
        phone.address,
        'shell',
        'while [[ -z $(getprop sys.boot_completed) ]]; do sleep 0.2; done; getprop sys.boot_completed',
      ]);
      assert.equal(out, '1\n');
      assert.equal(phone.device.booted, true);
    } finally {
      await host.dispose();
      await phone.close();
    }
  });
});
