import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeConfig, loadConfig } from '../config.js';
import { InvalidArgumentError } from '../errors.js';
import { loadPageTokenKeys, PAGE_TOKEN_KEY_FILE } from './page-token-keys.js';
import { type PageTokenKey, pageOf, readPage, usePageTokenKeys } from './pagination.js';

const key = (id: string): PageTokenKey => ({ id, secret: randomBytes(32) });

/** A token for `query` whose cursor is `after`, signed with the keys in use. */
function tokenFor(query: unknown, after = 'row_2'): string {
  const page = readPage(2, '', query);
  const { nextPageToken } = pageOf(['row_1', after, 'row_3'], page, (r) => r);
  assert.ok(nextPageToken);
  return nextPageToken;
}

function refused(pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof InvalidArgumentError);
    assert.equal(error.field, 'page_token');
    assert.match(error.message, pattern);
    return true;
  };
}

const NOT_ISSUED = /is not a page token this service issued/;

describe('signed page tokens', () => {
  test('a token reads back its cursor; another query’s token is refused', () => {
    usePageTokenKeys([key('k1')]);
    const token = tokenFor({ tenantId: 't1' });
    assert.equal(readPage(2, token, { tenantId: 't1' }).after, 'row_2');
    assert.throws(() => readPage(2, token, { tenantId: 't2' }), refused(/was issued for another query/));
  });

  test('a key rotation keeps tokens of the previous key until it is dropped', () => {
    const old = key('k1');
    const next = key('k2');
    usePageTokenKeys([old]);
    const before = tokenFor({ q: 1 });
    usePageTokenKeys([next, old]);
    assert.equal(readPage(2, before, { q: 1 }).after, 'row_2');
    const after = tokenFor({ q: 1 });
    assert.ok(after.startsWith('k2.'), 'the first key signs');
    usePageTokenKeys([next]);
    assert.equal(readPage(2, after, { q: 1 }).after, 'row_2');
    assert.throws(() => readPage(2, before, { q: 1 }), refused(NOT_ISSUED));
  });

  test('tokens of another server (same key id, other secret) and edited tokens are refused', () => {
    usePageTokenKeys([key('k1')]);
    const foreign = tokenFor({ q: 1 });
    usePageTokenKeys([key('k1')]);
    assert.throws(() => readPage(2, foreign, { q: 1 }), refused(NOT_ISSUED));

    const token = tokenFor({ q: 1 });
    const [id, , mac] = token.split('.');
    const moved = Buffer.from(
      JSON.stringify({ a: 'row_0', h: JSON.parse(atob(token.split('.')[1] ?? '')).h }),
    );
    for (const bad of [
      `${id}.${moved.toString('base64url')}.${mac}`,
      token.slice(0, -1),
      `${token}.x`,
      'x'.repeat(10_000),
      '...',
    ]) {
      assert.throws(() => readPage(2, bad, { q: 1 }), refused(NOT_ISSUED));
    }
  });

  test('the refusal echoes a bounded prefix of the token', () => {
    assert.throws(
      () => readPage(2, 'y'.repeat(100_000), {}),
      (error: Error) => error.message.length < 300 && /… \(100000 bytes\)/.test(error.message),
    );
  });

  test('keys must have a usable id and at least 32 bytes', () => {
    assert.throws(() => usePageTokenKeys([]), InvalidArgumentError);
    assert.throws(() => usePageTokenKeys([{ id: 'a.b', secret: randomBytes(32) }]), InvalidArgumentError);
    assert.throws(() => usePageTokenKeys([{ id: 'k', secret: randomBytes(16) }]), InvalidArgumentError);
  });
});

describe('page token keys from the config or the data dir', () => {
  let dataDir: string;
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'cphone-page-keys-'));
  });
  after(() => rm(dataDir, { recursive: true, force: true }));

  test('CPHONE_PAGE_TOKEN_KEYS lists the keys, first one signing; logs show only their ids', async () => {
    const a = randomBytes(32).toString('base64');
    const b = randomBytes(48).toString('base64');
    const config = loadConfig({ CPHONE_PAGE_TOKEN_KEYS: `k2:${a}, k1:${b}` }, { dataDir });
    assert.deepEqual(
      config.pageTokenKeys.map((k) => [k.id, k.secret.toString('base64')]),
      [
        ['k2', a],
        ['k1', b],
      ],
    );
    assert.deepEqual(await loadPageTokenKeys(config), config.pageTokenKeys);
    const logged = JSON.stringify(describeConfig(config));
    assert.ok(!logged.includes(a) && !logged.includes(b), 'secrets are masked');
    assert.match(logged, /"k2:\*\*\*","k1:\*\*\*"/);
  });

  test('malformed keys are refused without echoing what may be a secret', () => {
    const secret = randomBytes(8).toString('base64');
    for (const value of [secret, `k1:${secret}`, `bad id:${randomBytes(32).toString('base64')}`]) {
      assert.throws(
        () => loadConfig({ CPHONE_PAGE_TOKEN_KEYS: value }),
        (error: Error) => error instanceof InvalidArgumentError && !error.message.includes(secret),
      );
    }
    const dup = randomBytes(32).toString('base64');
    assert.throws(() => loadConfig({ CPHONE_PAGE_TOKEN_KEYS: `k:${dup},k:${dup}` }), /distinct/);
  });

  test('unset, one key is made in the data dir (0600), and every start and replica reads the same', async () => {
    const config = loadConfig({}, { dataDir });
    assert.deepEqual(config.pageTokenKeys, []);
    const together = await Promise.all([loadPageTokenKeys(config), loadPageTokenKeys(config)]);
    const later = await loadPageTokenKeys(config);
    const file = join(dataDir, PAGE_TOKEN_KEY_FILE);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const [stored] = later;
    assert.ok(stored);
    assert.equal(stored.secret.byteLength, 32);
    for (const keys of together) assert.deepEqual(keys, later);
    assert.match(await readFile(file, 'utf8'), new RegExp(`^${stored.id}:`));
  });
});
