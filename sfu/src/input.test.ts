import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputError, MAX_INPUT_BYTES, parseViewerInput } from './input.js';

test('each kind of input passes the contract as sent', () => {
  const touch = {
    type: 'touch',
    action: 'down',
    pointerId: 3,
    x: 10.5,
    y: 20,
    pressure: 0.7,
    frameWidth: 720,
    frameHeight: 1280,
  };
  assert.deepEqual(parseViewerInput(JSON.stringify(touch)), touch);
  assert.deepEqual(parseViewerInput('{"type":"text","text":"你好，世界 こんにちは 안녕하세요 🙂"}'), {
    type: 'text',
    text: '你好，世界 こんにちは 안녕하세요 🙂',
  });
  assert.deepEqual(parseViewerInput('{"type":"nav","button":"home"}'), { type: 'nav', button: 'home' });
  assert.deepEqual(parseViewerInput('{"type":"clipboard","text":"","paste":false}'), {
    type: 'clipboard',
    text: '',
    paste: false,
  });
});

test('a message off the contract is refused naming the field, whatever it holds', () => {
  const cases: [string, string][] = [
    ['not json', 'message'],
    ['[1]', 'message'],
    ['{"type":"shell","cmd":"rm -rf /"}', 'type'],
    [
      '{"type":"touch","action":"down","pointerId":1,"x":800,"y":1,"pressure":1,"frameWidth":720,"frameHeight":1280}',
      'x',
    ],
    [
      '{"type":"touch","action":"hover","pointerId":1,"x":1,"y":1,"pressure":1,"frameWidth":720,"frameHeight":1280}',
      'action',
    ],
    ['{"type":"key","action":"down","keycode":1e9,"metaState":0,"repeat":0}', 'keycode'],
    ['{"type":"text","text":""}', 'text'],
    ['{"type":"text","text":"a\\u0000b"}', 'text'],
    ['{"type":"clipboard","text":"x"}', 'paste'],
    [JSON.stringify({ type: 'text', text: 'x'.repeat(MAX_INPUT_BYTES) }), 'message'],
  ];
  for (const [raw, field] of cases) {
    assert.throws(
      () => parseViewerInput(raw),
      (e: unknown) => e instanceof InputError && e.field === field,
      raw.slice(0, 60),
    );
  }
});
