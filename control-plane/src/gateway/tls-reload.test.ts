import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createCertificateAuthority, issueServerCertificate } from '@cphone/proto';
import pino from 'pino';
import { describeCertificate, ReloadingTls } from './tls-reload.js';

test('ReloadingTls takes a changed matching pair, keeps the current one otherwise', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cphone-tls-reload-'));
  const files = {
    certFile: join(dir, 'tls.crt'),
    keyFile: join(dir, 'tls.key'),
    caFile: join(dir, 'ca.crt'),
  };
  const ca = await createCertificateAuthority('test CA');
  const first = await issueServerCertificate(ca, { commonName: 'first' });
  const second = await issueServerCertificate(ca, { commonName: 'second' });
  const logger = pino({ level: 'silent' });
  assert.throws(
    () => new ReloadingTls(files, { cert: first.cert, key: second.key, caPem: ca.cert }, logger, 0),
    /CPHONE_TLS_KEY.*the key is not the certificate's/,
  );
  const tls = new ReloadingTls(files, { cert: first.cert, key: first.key, caPem: ca.cert }, logger, 0);
  const updates: string[] = [];
  tls.addIdentityCertificateListener((update) => {
    if (update) updates.push(describeCertificate(update.certificate.toString()).serial);
  });
  try {
    // Unreadable files: nothing changes.
    assert.equal(await tls.reload(), false);
    // Half a rotation (the new key beside the old certificate) is refused.
    await writeFile(files.certFile, first.cert);
    await writeFile(files.keyFile, second.key);
    await writeFile(files.caFile, ca.cert);
    assert.equal(await tls.reload(), false);
    assert.equal(tls.current.cert, first.cert);
    await writeFile(files.certFile, second.cert);
    assert.equal(await tls.reload(), true);
    assert.equal(tls.current.cert, second.cert);
    assert.equal(await tls.reload(), false, 'the same files again change nothing');
    // The listener heard the initial pair, then the new one.
    assert.deepEqual(updates, [
      describeCertificate(first.cert).serial,
      describeCertificate(second.cert).serial,
    ]);
  } finally {
    tls.close();
    await rm(dir, { recursive: true, force: true });
  }
});
