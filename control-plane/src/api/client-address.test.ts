import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLIENT_ADDRESS_HEADER } from '../users/sessions.js';
import { clientAddress, TrustedProxies } from './client-address.js';

const headers = (peer: string, forwarded?: string) =>
  new Headers({ [CLIENT_ADDRESS_HEADER]: peer, ...(forwarded ? { 'x-forwarded-for': forwarded } : {}) });

test('X-Forwarded-For is believed only from a trusted proxy, and only past the trusted hops', () => {
  const none = new TrustedProxies([]);
  assert.equal(clientAddress(headers('::ffff:10.0.0.5', '203.0.113.7'), none), '10.0.0.5');
  const lb = new TrustedProxies(['10.0.0.0/8', 'fd00::/8']);
  assert.equal(
    clientAddress(headers('198.51.100.1', '203.0.113.7'), lb),
    '198.51.100.1',
    'an untrusted peer',
  );
  assert.equal(clientAddress(headers('10.0.0.5', '203.0.113.7'), lb), '203.0.113.7');
  // A client that forges the header's left end gains nothing: the right-most untrusted hop wins.
  assert.equal(clientAddress(headers('10.0.0.5', '1.2.3.4, 203.0.113.7, 10.1.1.1'), lb), '203.0.113.7');
  assert.equal(clientAddress(headers('10.0.0.5', 'garbage'), lb), '10.0.0.5');
  assert.equal(clientAddress(headers('10.0.0.5'), lb), '10.0.0.5');
  assert.throws(() => new TrustedProxies(['10.0.0.0/33']), /CPHONE_TRUSTED_PROXIES/);
  assert.throws(() => new TrustedProxies(['lb.internal']), /CPHONE_TRUSTED_PROXIES/);
});
