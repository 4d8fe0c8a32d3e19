// What the agent reads from and writes to the device shell, checked without a device.
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { escapeInputText, inputCommand } from './input.js';
import { parseInstallOutput } from './install-output.js';
import { logcatDumpCommand, trimLogcat } from './logcat.js';
import { parseGetpropDump } from './props.js';
import { pngDimensions } from './screen.js';
import { Semaphore } from './semaphore.js';
import { ExecOutput } from './shell.js';

describe('pm install output', () => {
  test('Success, Failure with and without detail, and unparseable errors', () => {
    assert.deepEqual(parseInstallOutput('Performing Streamed Install\nSuccess\n', 0), { ok: true });
    assert.deepEqual(
      parseInstallOutput('Failure [INSTALL_FAILED_VERSION_DOWNGRADE: Downgrade detected: 2 < 3]\n', 1),
      { ok: false, failureReason: 'INSTALL_FAILED_VERSION_DOWNGRADE', detail: 'Downgrade detected: 2 < 3' },
    );
    assert.deepEqual(
      parseInstallOutput('adb: failed to install x.apk: Failure [INSTALL_FAILED_OLDER_SDK]', 1),
      {
        ok: false,
        failureReason: 'INSTALL_FAILED_OLDER_SDK',
        detail: '',
      },
    );
    assert.deepEqual(parseInstallOutput('\nError: java.lang.SecurityException: nope\n', 255), {
      ok: false,
      failureReason: 'INSTALL_FAILED_UNKNOWN',
      detail: 'Error: java.lang.SecurityException: nope',
    });
  });
});

describe('exec fallback exit status', () => {
  const run = (chunks: string[], limit: number) => {
    const output = new ExecOutput(limit);
    for (const c of chunks) output.push(Buffer.from(c));
    const stdout = output.stdout('~n~');
    return {
      text: Buffer.from(stdout.bytes()).toString(),
      truncated: stdout.truncated,
      exitCode: output.exitCode('~n~'),
    };
  };
  test('the marker is stripped and parsed, across chunk borders', () => {
    assert.deepEqual(run(['hello\n~', 'n~7\n'], 100), { text: 'hello\n', truncated: false, exitCode: 7 });
  });
  test('output over the limit keeps the head; the marker still comes from the tail', () => {
    assert.deepEqual(run(['x'.repeat(500), '~n~0\n'], 10), {
      text: 'x'.repeat(10),
      truncated: true,
      exitCode: 0,
    });
    assert.deepEqual(run(['x'.repeat(10), '~n~2\n'], 10), {
      text: 'x'.repeat(10),
      truncated: false,
      exitCode: 2,
    });
  });
  test('no marker (killed) gives exit code -1', () => {
    assert.equal(run(['partial'], 100).exitCode, -1);
  });
});

describe('input commands', () => {
  test('text is quoted for the shell and spaces use the %s escape', () => {
    assert.equal(escapeInputText(`a b'c`), `'a%sb'\\''c'`);
    assert.throws(() => escapeInputText('tab\there'), /control characters/);
    assert.throws(() => escapeInputText(''), /must not be empty/);
  });
  test('a held tap becomes a stationary swipe; bad coordinates and key codes are refused', () => {
    assert.equal(inputCommand({ kind: 'tap', x: 1, y: 2, durationMs: 800 }), 'input swipe 1 2 1 2 800');
    assert.equal(
      inputCommand({ kind: 'key', keycode: 'KEYCODE_HOME', longpress: true }),
      'input keyevent --longpress KEYCODE_HOME',
    );
    assert.throws(() => inputCommand({ kind: 'tap', x: -1, y: 2 }), /tap\.x/);
    assert.throws(() => inputCommand({ kind: 'key', keycode: 'HOME; reboot' }), /key\.keycode/);
  });
});

describe('logcat and getprop', () => {
  test('the dump asks one extra line to detect cutting; filter specs are validated and quoted', () => {
    assert.equal(
      logcatDumpCommand({ lines: 5, filterSpecs: ['*:S', 'Tag:I'] }),
      "logcat -d -v threadtime -t 6 '*:S' 'Tag:I'",
    );
    assert.throws(() => logcatDumpCommand({ lines: 5, filterSpecs: ['a;reboot'] }), /filterSpecs/);
  });
  test('trimLogcat keeps the newest lines within the byte budget', () => {
    assert.deepEqual(trimLogcat('a\nb\nc\n', { lines: 3 }), { text: 'a\nb\nc\n', truncated: false });
    assert.deepEqual(trimLogcat('a\nb\nc\nd\n', { lines: 3 }), { text: 'b\nc\nd\n', truncated: true });
    assert.deepEqual(trimLogcat('aaaa\nbb\ncc\n', { lines: 10, maxBytes: 6 }), {
      text: 'bb\ncc\n',
      truncated: true,
    });
  });
  test('getprop dump lines become a map', () => {
    const props = parseGetpropDump('[ro.a]: [1]\n[ro.b]: []\n[x.multi]: [line1\nline2]\n');
    assert.deepEqual(
      [...props],
      [
        ['ro.a', '1'],
        ['ro.b', ''],
        ['x.multi', 'line1\nline2'],
      ],
    );
  });
});

describe('png and semaphore', () => {
  test('pngDimensions reads IHDR and refuses other bytes', () => {
    const png = Buffer.alloc(33);
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(png);
    png.writeUInt32BE(13, 8);
    png.write('IHDR', 12, 'latin1');
    png.writeUInt32BE(1080, 16);
    png.writeUInt32BE(2400, 20);
    assert.deepEqual(pngDimensions(png), { width: 1080, height: 2400 });
    assert.throws(() => pngDimensions(Buffer.from('/system/bin/sh: screencap: not found\n')), /not a PNG/);
  });
  test('the semaphore bounds holders and an aborted waiter leaves the queue', async () => {
    const semaphore = new Semaphore(1);
    const release = await semaphore.acquire();
    const controller = new AbortController();
    const aborted = semaphore.acquire(controller.signal);
    const waiting = semaphore.acquire();
    assert.equal(semaphore.pending, 2);
    controller.abort(new Error('gave up'));
    await assert.rejects(aborted, /gave up/);
    assert.equal(semaphore.pending, 1);
    release();
    (await waiting)();
    (await semaphore.acquire())();
  });
});
