import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { createStreamKey, loadStreamKeys } from './keys.js';

const logger = pino({ level: 'silent' });

test('the first start makes a key (0600); a newer key verifies at once but signs only after the overlap', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cphone-keys-'));
  try {
    const t0 = new Date('2026-12-01T10:00:00Z');
    const first = await loadStreamKeys(dir, { create: true, logger, now: t0, overlapMs: 3_600_000 });
    assert.equal(first.signer.keyId, 'sk-20261201T100000');
    assert.equal((await stat(join(dir, `${first.signer.keyId}.pem`))).mode & 0o777, 0o600);
    const newer = await createStreamKey(dir, new Date('2026-12-01T12:00:00Z'));
    const during = await loadStreamKeys(dir, {
      create: true,
      logger,
      now: new Date('2026-12-01T12:30:00Z'),
      overlapMs: 3_600_000,
    });
    assert.deepEqual(
      during.verifyKeys.map((k) => k.keyId),
      [first.signer.keyId, newer],
    );
    assert.equal(during.signer.keyId, first.signer.keyId, 'the old key still signs during the overlap');
    const after = await loadStreamKeys(dir, {
      create: true,
      logger,
      now: new Date('2026-12-01T13:00:01Z'),
      overlapMs: 3_600_000,
    });
    assert.equal(after.signer.keyId, newer);
    await assert.rejects(
      loadStreamKeys(await mkdtemp(join(tmpdir(), 'cphone-keys-')), {
        create: false,
        logger,
        now: t0,
        overlapMs: 0,
      }),
      /no stream signing keys/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
