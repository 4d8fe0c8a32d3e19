import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AlreadyExistsError, ECHO_CHARS, InvalidArgumentError, NotFoundError, quote } from './errors.js';

test('a bad value is echoed whole when short, as a bounded prefix and its size when long', () => {
  assert.equal(quote('dev_1'), '"dev_1"');
  assert.equal(quote(42), '42');
  assert.equal(quote(12n), '"12"');
  const long = 'x'.repeat(5 * 1024 * 1024);
  assert.equal(quote(long), `"${'x'.repeat(ECHO_CHARS)}"… (5242880 bytes)`);
  assert.equal(quote('é'.repeat(200)), `"${'é'.repeat(ECHO_CHARS)}"… (400 bytes)`);
  assert.match(
    quote({ list: Array.from({ length: 1000 }, (_, i) => i) }),
    /^\{"list":\[0,1,2.*… \(\d+ bytes\)$/,
  );
});

test('a prefix never splits a surrogate pair, and control characters stay escaped', () => {
  const emoji = `${'a'.repeat(ECHO_CHARS - 1)}😀${'b'.repeat(10)}`;
  const echoed = quote(emoji);
  assert.equal(echoed, `"${'a'.repeat(ECHO_CHARS - 1)}"… (${Buffer.byteLength(emoji)} bytes)`);
  assert.equal(quote('a\u0000\u001b'), '"a\\u0000\\u001b"');
});

test('the errors that repeat a value repeat it bounded', () => {
  const value = 'v'.repeat(100_000);
  for (const error of [
    new InvalidArgumentError('display_name', value, 'must be 1-200 characters'),
    new NotFoundError('device', value),
    new AlreadyExistsError('host', 'name', value),
  ]) {
    assert.ok(error.message.length < 250, `${error.constructor.name}: ${error.message.length} characters`);
    assert.match(error.message, /… \(100000 bytes\)/);
  }
});
