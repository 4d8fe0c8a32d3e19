// The agent's side of stream tokens: keys from the control plane, this host only, revocations by
// session, device and tenant (older tokens only), and forgetting bars once no token they refuse
// can still be valid.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import {
  type AdbTunnelTokenClaims,
  agentv1,
  type StreamTokenClaims,
  signAdbTunnelToken,
  signingKey,
  signStreamToken,
} from '@cphone/proto';
import { MAX_TOKEN_LIFETIME_MS, StreamAuth } from './stream-auth.js';

function newKey(keyId: string) {
  const { privateKey } = generateKeyPairSync('ed25519');
  return signingKey(keyId, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
}

const T0 = Date.parse('2026-12-01T12:00:00Z');
const base: StreamTokenClaims = {
  sessionId: 'strm_1',
  deviceId: 'dev_1',
  hostId: 'host_a',
  tenantId: 'tenant_1',
  rights: 'control',
  expiresAt: T0 / 1000 + 600,
  issuedAt: T0 / 1000,
};

function setup() {
  let now = T0 + 1000;
  const auth = new StreamAuth({ hostId: 'host_a', now: () => now });
  const key = newKey('sk-1');
  auth.setKeys([
    create(agentv1.StreamTokenKeySchema, {
      keyId: key.keyId,
      algorithm: 'Ed25519',
      publicKey: key.publicKey,
    }),
  ]);
  return {
    auth,
    key,
    sign: (claims: Partial<StreamTokenClaims> = {}) => signStreamToken(key, { ...base, ...claims }),
    at: (ms: number) => {
      now = ms;
    },
  };
}

const revocation = ({
  issuedBeforeMs,
  ...init
}: {
  sessionId?: string;
  deviceId?: string;
  tenantId?: string;
  reason?: string;
  message?: string;
  issuedBeforeMs?: number;
}) =>
  create(agentv1.StreamRevocationSchema, {
    ...init,
    ...(issuedBeforeMs !== undefined ? { issuedBefore: timestampFromMs(issuedBeforeMs) } : {}),
  });

test('a token signed with a held key, for this host, in force, is admitted with its claims', async () => {
  const { auth, sign } = setup();
  const claims = await auth.verify(await sign());
  assert.equal(claims.sessionId, 'strm_1');
  assert.equal(claims.rights, 'control');
  assert.equal(claims.issuedAt, T0 / 1000);
});

test('no keys yet, another host, an unknown key, an expired token: each refused with its reason', async () => {
  const fresh = new StreamAuth({ hostId: 'host_a', now: () => T0 });
  const { auth, sign, at } = setup();
  await assert.rejects(fresh.verify(await sign()), /not received the control plane’s keys/);
  await assert.rejects(auth.verify(await sign({ hostId: 'host_b' })), /for another host/);
  await assert.rejects(
    auth.verify(await signStreamToken(newKey('sk-2'), base)),
    /key this host does not hold/,
  );
  await assert.rejects(auth.verify(`${(await sign()).slice(0, -4)}AAAA`), /not valid/);
  at(T0 + 601_000);
  await assert.rejects(auth.verify(await sign()), /expired/);
});

test('rotation: the keys sent replace the held ones, old and new both verify during the overlap', async () => {
  const { auth, key, sign } = setup();
  const next = newKey('sk-2');
  const wire = (k: typeof key) =>
    create(agentv1.StreamTokenKeySchema, { keyId: k.keyId, algorithm: 'Ed25519', publicKey: k.publicKey });
  auth.setKeys([wire(key), wire(next)]);
  await auth.verify(await sign());
  await auth.verify(await signStreamToken(next, base));
  auth.setKeys([wire(next)]);
  await assert.rejects(auth.verify(await sign()), /key this host does not hold/);
});

test('revocations: a session refuses its own token; a device or tenant every token issued before', async () => {
  const { auth, sign } = setup();
  const match = auth.revoke(revocation({ sessionId: 'strm_1', reason: 'REVOKED', message: 'bye' }));
  assert.deepEqual(match, { sessionId: 'strm_1', reason: 'REVOKED', message: 'bye' });
  await assert.rejects(auth.verify(await sign()), /session was revoked/);
  await auth.verify(await sign({ sessionId: 'strm_2' }));

  auth.revoke(revocation({ deviceId: 'dev_1', reason: 'DEVICE_STOPPED', issuedBeforeMs: T0 + 500 }));
  await assert.rejects(auth.verify(await sign({ sessionId: 'strm_3' })), /was revoked/);
  // Issued after the bar: a new session on the restarted phone is admitted.
  await auth.verify(await sign({ sessionId: 'strm_4', issuedAt: (T0 + 501) / 1000 }));

  auth.revoke(revocation({ tenantId: 'tenant_9', reason: 'TENANT_SUSPENDED', issuedBeforeMs: T0 + 900 }));
  await assert.rejects(
    auth.verify(
      await sign({
        sessionId: 'strm_5',
        deviceId: 'dev_9',
        tenantId: 'tenant_9',
        issuedAt: (T0 + 800) / 1000,
      }),
    ),
    /was revoked/,
  );
  assert.equal(
    auth.revoke(revocation({ reason: 'NOTHING' })),
    undefined,
    'a revocation naming nothing matches nothing',
  );
});

test('bars are forgotten once every token they could refuse has expired', async () => {
  const { auth, sign, at } = setup();
  auth.revoke(revocation({ deviceId: 'dev_1', issuedBeforeMs: T0 + 500 }));
  at(T0 + 500 + MAX_TOKEN_LIFETIME_MS + 1);
  auth.revoke(revocation({ sessionId: 'strm_other' })); // prunes
  const late = T0 + 500 + MAX_TOKEN_LIFETIME_MS + 1;
  // A token issued before the old bar cannot be valid any more: its refusal is expiry now.
  await assert.rejects(
    auth.verify(await sign({ issuedAt: T0 / 1000, expiresAt: T0 / 1000 + 86_400 })),
    /expired/,
  );
  await auth.verify(await sign({ sessionId: 'strm_9', issuedAt: late / 1000, expiresAt: late / 1000 + 60 }));
});

test('a join that comes before the first keys waits for them and is admitted once they arrive', async () => {
  const { key, sign } = setup();
  const fresh = new StreamAuth({ hostId: 'host_a', now: () => T0 + 1000, keysWaitMs: 60_000 });
  let settled = false;
  const joining = fresh.verify(await sign()).finally(() => {
    settled = true;
  });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(settled, false, 'still waiting while no key is held');
  fresh.setKeys([
    create(agentv1.StreamTokenKeySchema, {
      keyId: key.keyId,
      algorithm: 'Ed25519',
      publicKey: key.publicKey,
    }),
  ]);
  assert.equal((await joining).sessionId, 'strm_1');
});

test('ADB tunnel tokens: admitted for this host, refused for another or once revoked, never as stream tokens', async () => {
  const { auth, key, sign } = setup();
  const tunnel: AdbTunnelTokenClaims = {
    tunnelId: 'adbt_1',
    deviceId: 'dev_1',
    hostId: 'host_a',
    tenantId: 'tenant_1',
    actor: 'key_1',
    expiresAt: T0 / 1000 + 600,
    issuedAt: T0 / 1000,
  };
  const signTunnel = (claims: Partial<AdbTunnelTokenClaims> = {}) =>
    signAdbTunnelToken(key, { ...tunnel, ...claims });
  assert.deepEqual(await auth.verifyAdbTunnel(await signTunnel()), tunnel);
  await assert.rejects(
    auth.verifyAdbTunnel(await signTunnel({ hostId: 'host_b' })),
    /ADB tunnel token is for another host/,
  );
  await assert.rejects(auth.verifyAdbTunnel(await sign()), /ADB tunnel token is not valid/);
  await assert.rejects(auth.verify(await signTunnel()), /stream token is not valid/);
  auth.revoke(revocation({ deviceId: 'dev_1', reason: 'DEVICE_STOPPED', issuedBeforeMs: T0 + 500 }));
  await assert.rejects(auth.verifyAdbTunnel(await signTunnel()), /ADB tunnel token was revoked/);
  await auth.verifyAdbTunnel(await signTunnel({ issuedAt: (T0 + 501) / 1000 }));
});
