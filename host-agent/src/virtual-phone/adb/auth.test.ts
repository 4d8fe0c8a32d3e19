import * as assert from 'node:assert/strict';
import { constants, generateKeyPairSync, privateEncrypt, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { adbGeneratePublicKey } from '@yume-chan/adb';
import { AuthorizedKeys, InvalidAdbKeyError, parseAdbPublicKey, verifyTokenSignature } from './auth.js';

function makeKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const der = privateKey.export({ type: 'pkcs8', format: 'der' });
  const pub = `${Buffer.from(adbGeneratePublicKey(new Uint8Array(der))).toString('base64')} me@host`;
  // What adb does: RSA_sign(NID_sha1) over the raw 20-byte token.
  const sign = (token: Uint8Array) =>
    privateEncrypt(
      { key: privateKey, padding: constants.RSA_PKCS1_PADDING },
      Buffer.concat([Buffer.from('3021300906052b0e03021a05000414', 'hex'), token]),
    );
  return { pub, sign };
}

test('parses the mincrypt public key and verifies a token signature', () => {
  const { pub, sign } = makeKey();
  const key = parseAdbPublicKey(`${pub}\0`);
  assert.equal(key.comment, 'me@host');
  assert.equal(key.key.asymmetricKeyDetails?.modulusLength, 2048);
  const token = randomBytes(20);
  assert.equal(verifyTokenSignature(key.key, token, sign(token)), true);
  assert.equal(verifyTokenSignature(key.key, randomBytes(20), sign(token)), false);
});

test('rejects malformed keys', () => {
  assert.throws(() => parseAdbPublicKey('AAAA'), InvalidAdbKeyError);
});

test('allow-list accepts only listed keys; accept-any adopts offered keys', () => {
  const a = makeKey();
  const b = makeKey();
  const token = randomBytes(20);
  const list = new AuthorizedKeys({ mode: 'allow-list', authorizedKeys: [a.pub] });
  assert.ok(list.verify(token, a.sign(token)));
  assert.equal(list.verify(token, b.sign(token)), undefined);
  assert.equal(list.offer(b.pub), undefined);
  const any = new AuthorizedKeys({ mode: 'accept-any' });
  assert.ok(any.offer(b.pub));
  assert.ok(any.verify(token, b.sign(token)), 'an accepted key is remembered');
});
