// Golden files for the CLI's output: tests/cli/golden/<name>, compared after normalize(). Run a test
// with UPDATE_GOLDEN=1 to write them again, then read the diff before committing it.
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { normalize } from './harness.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'golden');

export async function assertGolden(name: string, actual: string): Promise<void> {
  const text = normalize(actual);
  const path = join(dir, name);
  if (process.env.UPDATE_GOLDEN) {
    await mkdir(dir, { recursive: true });
    await writeFile(path, text);
    return;
  }
  const expected = await readFile(path, 'utf8').catch(() => undefined);
  assert.ok(expected !== undefined, `no golden file ${path}: run the test with UPDATE_GOLDEN=1 to write it`);
  assert.equal(text, expected, `output differs from ${path}`);
}
