import * as assert from 'node:assert/strict';
import { after, before, mock, test } from 'node:test';
import { Adb, AdbDaemonTransport } from '@yume-chan/adb';
import { MemoryCredentialStore } from '../adb/credential-store.js';
import { connectAdbTcp } from '../adb/tcp-transport.js';
import { startVirtualPhone, type VirtualPhone } from './phone.js';

let phone: VirtualPhone;

async function connect(): Promise<Adb> {
  const { connection } = await connectAdbTcp(phone.host, phone.port);
  return new Adb(
    await AdbDaemonTransport.authenticate({
      serial: phone.serial,
      connection,
      credentialStore: new MemoryCredentialStore(),
    }),
  );
}

async function sh(adb: Adb, command: string) {
  const shell = adb.subprocess.shellProtocol;
  assert.ok(shell);
  return shell.spawnWaitText(command);
}

const BOOT_DELAY_MS = 150;

// The phone's boot timer runs on mocked timers, so "not yet booted" is read before the boot for
// certain and the boot happens when a test ticks past the delay, however slow the machine is.
before(async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  phone = await startVirtualPhone({ serial: 'unit-1', bootDelayMs: BOOT_DELAY_MS });
});
after(async () => {
  mock.timers.reset();
  await phone.close();
});

test('boot_completed turns 1 after the boot delay', async () => {
  const adb = await connect();
  assert.equal((await sh(adb, 'getprop sys.boot_completed')).stdout, '\n', 'unset until boot completes');
  mock.timers.tick(BOOT_DELAY_MS - 1);
  assert.equal((await sh(adb, 'getprop sys.boot_completed')).stdout, '\n', 'not before the delay');
  mock.timers.tick(1);
  await phone.waitForBoot();
  assert.equal((await sh(adb, 'getprop sys.boot_completed')).stdout, '1\n');
  await adb.close();
});

test('the shell handles lists, sh -c, redirects and unknown commands', async () => {
  const adb = await connect();
  assert.deepEqual(await sh(adb, "echo a && false || echo 'b c'; sh -c 'exit 4'"), {
    stdout: 'a\nb c\n',
    stderr: '',
    exitCode: 4,
  });
  assert.equal((await sh(adb, 'echo saved > /sdcard/f.txt; cat /sdcard/f.txt')).stdout, 'saved\n');
  assert.deepEqual(await sh(adb, 'frobnicate 2>&1'), {
    stdout: '/system/bin/sh: frobnicate: inaccessible or not found\n',
    stderr: '',
    exitCode: 127,
  });
  assert.equal((await sh(adb, 'wm size')).stdout, 'Physical size: 720x1280\n');
  await sh(adb, 'input keyevent KEYCODE_HOME; input text hello%sworld');
  assert.deepEqual(phone.events.input.slice(-2), [
    { kind: 'keyevent', key: 'KEYCODE_HOME', longpress: false },
    { kind: 'text', text: 'hello world' },
  ]);
  await adb.close();
});

test('reboot drops adb, boot_completed is unset then 1, logcat records it', async () => {
  await phone.waitForBoot();
  const adb = await connect();
  phone.reboot();
  await adb.transport.disconnected;
  const again = await connect();
  assert.equal((await sh(again, 'getprop sys.boot_completed')).stdout, '\n');
  mock.timers.tick(BOOT_DELAY_MS);
  await phone.waitForBoot();
  assert.equal((await sh(again, 'getprop sys.boot_completed')).stdout, '1\n');
  assert.match((await sh(again, 'logcat -d')).stdout, /ActivityManager: boot completed/);
  await again.close();
});
