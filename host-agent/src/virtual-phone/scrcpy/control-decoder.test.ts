import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  AndroidKeyCode,
  AndroidKeyEventAction,
  AndroidMotionEventAction,
  ScrcpyControlMessageSerializer,
  ScrcpyOptions3_3_1,
} from '@yume-chan/scrcpy';
import { ByteQueue, ByteReader } from '../byte-reader.js';
import { controlProtocolFor, readControlMessage } from './control-decoder.js';

test('decodes what @yume-chan/scrcpy serializes for scrcpy 3.3', async () => {
  const s = new ScrcpyControlMessageSerializer(new ScrcpyOptions3_3_1({}));
  const queue = new ByteQueue();
  const bytes = [
    s.injectKeyCode({
      action: AndroidKeyEventAction.Down,
      keyCode: AndroidKeyCode.Home,
      repeat: 0,
      metaState: 0,
    }),
    s.injectText('héllo'),
    s.injectTouch({
      action: AndroidMotionEventAction.Move,
      pointerId: 2n,
      pointerX: 10,
      pointerY: 20,
      videoWidth: 720,
      videoHeight: 1280,
      pressure: 0.5,
      actionButton: 0,
      buttons: 1,
    }),
    s.injectScroll({
      pointerX: 1,
      pointerY: 2,
      videoWidth: 720,
      videoHeight: 1280,
      scrollX: 0,
      scrollY: -1,
      buttons: 0,
    }),
    s.backOrScreenOn(AndroidKeyEventAction.Down),
    s.setClipboard({ sequence: 0n, paste: true, content: 'clip' }),
    s.expandNotificationPanel(),
  ];
  // One byte per chunk: decoding must not depend on how ADB split the stream.
  for (const message of bytes) for (const byte of message as Uint8Array) queue.push(Uint8Array.of(byte));
  queue.end();
  const reader = new ByteReader(queue);
  const protocol = controlProtocolFor('3.3.3');
  const decoded = [];
  for (let m = await readControlMessage(reader, protocol); m; m = await readControlMessage(reader, protocol))
    decoded.push(m);
  assert.deepEqual(decoded, [
    {
      type: 'inject-keycode',
      action: AndroidKeyEventAction.Down,
      keyCode: AndroidKeyCode.Home,
      repeat: 0,
      metaState: 0,
    },
    { type: 'inject-text', text: 'héllo' },
    {
      type: 'inject-touch',
      action: AndroidMotionEventAction.Move,
      pointerId: 2n,
      x: 10,
      y: 20,
      screenWidth: 720,
      screenHeight: 1280,
      pressure: 0.5,
      actionButton: 0,
      buttons: 1,
    },
    {
      type: 'inject-scroll',
      x: 1,
      y: 2,
      screenWidth: 720,
      screenHeight: 1280,
      scrollX: 0,
      scrollY: -1,
      buttons: 0,
    },
    { type: 'back-or-screen-on', action: AndroidKeyEventAction.Down },
    { type: 'set-clipboard', sequence: 0n, paste: true, text: 'clip' },
    { type: 'expand-notification-panel' },
  ]);
});
