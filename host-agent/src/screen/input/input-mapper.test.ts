import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ViewerInput } from '@cphone/sfu';
import { InputMapper, type ScrcpyControl } from './input-mapper.js';
import { textRuns } from './text-runs.js';

/** Records what the mapper writes, as the control socket would carry it. */
function recorder() {
  const calls: [string, unknown][] = [];
  const record =
    (name: string) =>
    async (message?: unknown): Promise<void> => {
      calls.push([name, message]);
    };
  const control: ScrcpyControl = {
    injectTouch: record('touch'),
    injectScroll: record('scroll'),
    injectKeyCode: record('key'),
    injectText: record('text'),
    backOrScreenOn: record('back'),
    rotateDevice: record('rotate'),
    setClipboard: record('clipboard'),
  };
  return { calls, control };
}

const touch = (
  action: 'down' | 'move' | 'up' | 'cancel',
  pointerId: number,
  x: number,
  y: number,
  frame = [720, 1280],
) =>
  ({
    type: 'touch',
    action,
    pointerId,
    x,
    y,
    pressure: action === 'up' ? 0 : 0.5,
    frameWidth: frame[0],
    frameHeight: frame[1],
  }) as ViewerInput;

test('touches: frame to video coordinates, a finger per browser pointer, hover for pointers not down', async () => {
  const { calls, control } = recorder();
  let video = { width: 360, height: 640 };
  const mapper = new InputMapper(control, () => video);
  await mapper.handle(touch('move', 1, 100, 100)); // not down: hover
  await mapper.handle(touch('down', 1, 720, 1280));
  await mapper.handle(touch('down', 2, 0, 0));
  await mapper.handle(touch('move', 2, 360, 640));
  await mapper.handle(touch('up', 2, 360, 640));
  const points = calls.map(([, m]) => {
    const t = m as {
      action: number;
      pointerId: bigint;
      pointerX: number;
      pointerY: number;
      videoWidth: number;
      pressure: number;
    };
    return [t.action, t.pointerId, t.pointerX, t.pointerY, t.videoWidth, t.pressure];
  });
  assert.deepEqual(points, [
    [7, -1n, 50, 50, 360, 0], // HOVER_MOVE as scrcpy's mouse
    [0, 1n, 359, 639, 360, 0.5], // clamped inside the video
    [0, 2n, 0, 0, 360, 0.5],
    [2, 2n, 180, 320, 360, 0.5],
    [1, 2n, 180, 320, 360, 0],
  ]);
  // Rotated under the viewer's finger: moves on the old frame are dropped, the up still releases.
  calls.length = 0;
  video = { width: 640, height: 360 };
  await mapper.handle(touch('move', 1, 10, 10));
  await mapper.handle(touch('up', 1, 10, 10));
  assert.deepEqual(
    calls.map(([, m]) => [(m as { action: number }).action, (m as { pointerX: number }).pointerX]),
    [[1, 638]],
  );
});

test('at most 10 pointers; scroll is Android-signed; nav keys press and release', async () => {
  const { calls, control } = recorder();
  const mapper = new InputMapper(control, () => ({ width: 720, height: 1280 }));
  for (let id = 0; id < 11; id++) await mapper.handle(touch('down', id, 1, 1));
  assert.equal(calls.length, 10);
  calls.length = 0;
  await mapper.handle({ type: 'scroll', x: 10, y: 10, frameWidth: 720, frameHeight: 1280, dx: 0, dy: 2 });
  await mapper.handle({ type: 'nav', button: 'back' });
  await mapper.handle({ type: 'nav', button: 'app-switch' });
  await mapper.handle({ type: 'rotate' });
  assert.deepEqual(
    calls.map(([name, m]) =>
      name === 'scroll'
        ? [name, (m as { scrollY: number }).scrollY]
        : name === 'key'
          ? [name, (m as { keyCode: number }).keyCode, (m as { action: number }).action]
          : [name, m],
    ),
    [
      ['scroll', -2],
      ['back', 0],
      ['back', 1],
      ['key', 187, 0],
      ['key', 187, 1],
      ['rotate', undefined],
    ],
  );
});

test('text: typable runs as key events, the rest pasted with sequenced clipboard sets', async () => {
  assert.deepEqual(textRuns('ok 你好\n🙂é'), [
    { via: 'type', text: 'ok ' },
    { via: 'paste', text: '你好' },
    { via: 'type', text: '\n' },
    { via: 'paste', text: '🙂é' },
  ]);
  const { calls, control } = recorder();
  const mapper = new InputMapper(control, () => undefined);
  await mapper.handle({ type: 'text', text: 'a🙂' });
  await mapper.handle({ type: 'clipboard', text: 'x', paste: false });
  assert.deepEqual(calls, [
    ['text', 'a'],
    ['clipboard', { sequence: 1n, paste: true, content: '🙂' }],
    ['clipboard', { sequence: 2n, paste: false, content: 'x' }],
  ]);
});
