import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import {
  StreamTokenError,
  signAdbTunnelToken,
  signingKey,
  signStreamToken,
  verifyAdbTunnelToken,
  verifyStreamToken,
} from './stream-token.js';

const key = (id: string) =>
  signingKey(
    id,
    generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  );

const claims = {
  sessionId: 'sess_1',
  deviceId: 'dev_1',
  hostId: 'host_1',
  tenantId: 'tnt_1',
  rights: 'control' as const,
  expiresAt: Math.floor(Date.now() / 1000) + 600,
  issuedAt: Date.now() / 1000,
};

test('a token signed with a key verifies with its public key, also during a rotation overlap', async () => {
  const old = key('k1');
  const next = key('k2');
  const token = await signStreamToken(old, claims);
  assert.deepEqual(await verifyStreamToken(token, [next, old]), claims);
  assert.deepEqual(await verifyStreamToken(await signStreamToken(next, claims), [next, old]), claims);
  assert.equal(old.publicKey.length, 32);
});

test('forged, foreign-key, expired and malformed tokens are refused with a reason', async () => {
  const mine = key('k1');
  const theirs = key('k1');
  const token = await signStreamToken(mine, claims);
  const refused = (reason: RegExp) => (e: unknown) => e instanceof StreamTokenError && reason.test(e.message);
  await assert.rejects(
    verifyStreamToken(await signStreamToken(theirs, claims), [mine]),
    refused(/not valid/),
  );
  await assert.rejects(verifyStreamToken(token, [key('k9')]), refused(/does not hold/));
  const [h, p, s] = token.split('.');
  const payload = JSON.parse(Buffer.from(p ?? '', 'base64url').toString());
  const tampered = `${h}.${Buffer.from(JSON.stringify({ ...payload, rights: 'control', dev: 'dev_other' })).toString('base64url')}.${s}`;
  await assert.rejects(verifyStreamToken(tampered, [mine]), refused(/not valid/));
  await assert.rejects(
    verifyStreamToken(token, [mine], { now: (claims.expiresAt + 5) * 1000 }),
    refused(/expired/),
  );
  await assert.rejects(verifyStreamToken('nonsense', [mine]), refused(/malformed/));
});

test('an ADB tunnel token verifies as one, and neither kind of token passes for the other', async () => {
  const k = key('k1');
  const tunnel = {
    tunnelId: 'adbt_1',
    deviceId: 'dev_1',
    hostId: 'host_1',
    tenantId: 'tnt_1',
    actor: 'key_1',
    expiresAt: Math.floor(Date.now() / 1000) + 600,
    issuedAt: Date.now() / 1000,
  };
  const tunnelToken = await signAdbTunnelToken(k, tunnel);
  assert.deepEqual(await verifyAdbTunnelToken(tunnelToken, [k]), tunnel);
  const refused = (e: unknown) => e instanceof StreamTokenError && /not valid/.test(e.message);
  await assert.rejects(verifyStreamToken(tunnelToken, [k]), refused);
  await assert.rejects(verifyAdbTunnelToken(await signStreamToken(k, claims), [k]), refused);
});
