import * as assert from 'node:assert/strict';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Adb, AdbDaemonTransport } from '@yume-chan/adb';
import { MemoryCredentialStore } from '../adb/credential-store.js';
import { pushFile } from '../adb/sync-ops.js';
import { connectAdbTcp } from '../adb/tcp-transport.js';
import { startVirtualPhone, type VirtualPhone } from './phone.js';

const apkPath = new URL('../../fixtures/test-app.apk', import.meta.url).pathname;
let dataDir: string;

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'cphone-vp-data-'));
});
after(() => rm(dataDir, { recursive: true, force: true }));

async function withAdb<T>(phone: VirtualPhone, use: (adb: Adb) => Promise<T>): Promise<T> {
  const { connection } = await connectAdbTcp(phone.host, phone.port);
  const adb = new Adb(
    await AdbDaemonTransport.authenticate({
      serial: phone.serial,
      connection,
      credentialStore: new MemoryCredentialStore(),
    }),
  );
  try {
    return await use(adb);
  } finally {
    await adb.close();
  }
}

async function sh(adb: Adb, command: string): Promise<string> {
  const shell = adb.subprocess.shellProtocol;
  assert.ok(shell);
  const { stdout, exitCode } = await shell.spawnWaitText(command);
  assert.equal(exitCode, 0, `${command}: ${stdout}`);
  return stdout;
}

test('with a data dir, files, installed apps and persist.* properties outlive the phone', async () => {
  const first = await startVirtualPhone({ serial: 'data-1', dataDir });
  await withAdb(first, async (adb) => {
    await pushFile(adb, await readFile(apkPath), '/data/local/tmp/app.apk');
    assert.equal(await sh(adb, 'pm install /data/local/tmp/app.apk'), 'Success\n');
    await pushFile(adb, new TextEncoder().encode('pushed'), '/sdcard/Download/note.txt');
    await sh(adb, 'echo scratch > /data/local/tmp/gone.txt; rm /data/local/tmp/gone.txt');
    await sh(adb, 'setprop persist.cphone.flag on; setprop debug.cphone.flag on');
  });
  await first.close();
  // The folder is the phone's /data: the APK copy and /sdcard (media/0) are plain files.
  await access(join(dataDir, 'app/dev.cphone.testapp-1/base.apk'));
  assert.equal(await readFile(join(dataDir, 'media/0/Download/note.txt'), 'utf8'), 'pushed');

  const second = await startVirtualPhone({ serial: 'data-1', dataDir });
  try {
    assert.deepEqual(
      second.installedPackages().map((p) => [p.packageName, p.path]),
      [['dev.cphone.testapp', '/data/app/dev.cphone.testapp-1/base.apk']],
    );
    await withAdb(second, async (adb) => {
      assert.match(await sh(adb, 'pm list packages -3'), /^package:dev\.cphone\.testapp$/m);
      assert.equal(
        await sh(adb, 'pm path dev.cphone.testapp'),
        'package:/data/app/dev.cphone.testapp-1/base.apk\n',
      );
      assert.equal(await sh(adb, 'cat /sdcard/Download/note.txt'), 'pushed');
      assert.equal(await sh(adb, 'ls /data/local/tmp'), 'app.apk\n');
      assert.equal(await sh(adb, 'getprop persist.cphone.flag'), 'on\n');
      assert.equal(await sh(adb, 'getprop debug.cphone.flag'), '\n', 'non-persist properties reset');
      assert.equal(await sh(adb, 'pm uninstall dev.cphone.testapp'), 'Success\n');
    });
  } finally {
    await second.close();
  }

  const third = await startVirtualPhone({ serial: 'data-1', dataDir });
  try {
    assert.deepEqual(third.installedPackages(), [], 'the uninstall persisted');
    assert.equal(third.device.fs.stat('/data/app/dev.cphone.testapp-1'), undefined);
  } finally {
    await third.close();
  }
});

test('without a data dir the phone forgets everything on close', async () => {
  const first = await startVirtualPhone({ serial: 'mem-1' });
  await first.device.packages.install(await readFile(apkPath));
  first.device.fs.write('/sdcard/x.txt', new TextEncoder().encode('x'));
  await first.close();
  const second = await startVirtualPhone({ serial: 'mem-1' });
  try {
    assert.deepEqual(second.installedPackages(), []);
    assert.equal(second.device.fs.stat('/sdcard/x.txt'), undefined);
  } finally {
    await second.close();
  }
});
