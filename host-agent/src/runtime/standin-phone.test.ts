import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import { parseBootArgs } from './standin-phone.js';

it('parseBootArgs reads Redroid key=value arguments and ignores the rest', () => {
  const args = parseBootArgs([
    'androidboot.redroid_width=1080',
    'ro.product.model=Pixel 7',
    'qemu',
    '=x',
    'a=b=c',
  ]);
  assert.deepEqual(
    [...args],
    [
      ['androidboot.redroid_width', '1080'],
      ['ro.product.model', 'Pixel 7'],
      ['a', 'b=c'],
    ],
  );
});
