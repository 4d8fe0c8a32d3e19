// The player's pure parts: where the picture sits in its box, the key map and the message tables.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fitRect, toFrame } from './geometry.js';
import { ANDROID_KEYCODES, isTyping, META, metaState } from './keymap.js';
import { closeText, messagesFor } from './messages.js';

test('a portrait frame in a landscape box is centred with bars; points on the bars are outside the frame', () => {
  const shown = fitRect({ left: 10, top: 20, width: 800, height: 450 }, 720, 1280);
  assert.deepEqual(shown, { left: 10 + (800 - 253.125) / 2, top: 20, width: 253.125, height: 450 });
  assert.deepEqual(toFrame(shown, 720, 1280, shown.left + shown.width / 4, 20 + 450 * 0.75), {
    x: 180,
    y: 960,
  });
  assert.equal(toFrame(shown, 720, 1280, 15, 100), undefined);
  assert.deepEqual(toFrame(shown, 720, 1280, 15, 100, true), { x: 0, y: 227.56 });
});

test('keys map to Android key codes with meta state; printable keys go as text; Tab is not taken', () => {
  assert.equal(ANDROID_KEYCODES.Enter, 66);
  assert.equal(ANDROID_KEYCODES.Backspace, 67);
  assert.equal(ANDROID_KEYCODES.KeyA, 29);
  assert.equal(ANDROID_KEYCODES.KeyZ, 54);
  assert.equal(ANDROID_KEYCODES.Digit0, 7);
  assert.equal(ANDROID_KEYCODES.F12, 142);
  assert.equal(ANDROID_KEYCODES.Tab, undefined);
  const mods = {
    shiftKey: true,
    altKey: false,
    ctrlKey: true,
    metaKey: false,
    getModifierState: () => false,
  };
  assert.equal(metaState(mods), META.SHIFT_ON | META.SHIFT_LEFT_ON | META.CTRL_ON | META.CTRL_LEFT_ON);
  const key = (k: string, ctrlKey = false) => ({ key: k, ctrlKey, altKey: false, metaKey: false });
  assert.equal(isTyping(key('a')), true);
  assert.equal(isTyping(key('🙂')), true);
  assert.equal(isTyping(key('a', true)), false);
  assert.equal(isTyping(key('Enter')), false);
});

test('messages: zh picks Simplified Chinese, anything else English; closes in words', () => {
  assert.equal(messagesFor('zh-CN').home, '主屏幕');
  assert.equal(messagesFor('zh').home, '主屏幕');
  assert.equal(messagesFor('zh-TW').home, 'Home');
  assert.equal(messagesFor('fr').home, 'Home');
  assert.deepEqual(Object.keys(messagesFor('zh')).sort(), Object.keys(messagesFor('en')).sort());
  const en = messagesFor('en');
  assert.equal(
    closeText(en, 4401, 'BAD_TOKEN: the stream token has expired', true),
    'The stream token has expired (4401)',
  );
  assert.equal(
    closeText(en, 4410, 'REVOKED: support call over', false),
    'The session was revoked (4410: support call over)',
  );
  assert.equal(closeText(en, 4999, '', false), 'The stream closed (4999)');
});
