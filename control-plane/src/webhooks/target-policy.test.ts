import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidArgumentError } from '../errors.js';
import { blockedAddress, type Resolver, TargetPolicy } from './target-policy.js';

/** A resolver over a fixed table (names may change their answer between calls: DNS rebinding). */
function table(answers: Record<string, string[][]>): Resolver {
  const calls = new Map<string, number>();
  return async (host) => {
    const n = calls.get(host) ?? 0;
    calls.set(host, n + 1);
    const list = answers[host];
    if (!list) throw new Error(`ENOTFOUND ${host}`);
    const addresses = list[Math.min(n, list.length - 1)] ?? [];
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
}

function refused(pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof InvalidArgumentError, String(error));
    assert.equal(error.field, 'url');
    assert.match(error.message, pattern);
    return true;
  };
}

test('addresses inside private, loopback, link-local, unique-local, multicast and unspecified ranges are blocked', () => {
  for (const address of [
    '10.0.0.1',
    '127.0.0.1',
    '169.254.169.254',
    '172.16.5.4',
    '192.168.1.1',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    'fd00::1',
    'fe80::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:a9fe:a9fe',
  ])
    assert.ok(blockedAddress(address), `${address} must be blocked`);
  for (const address of ['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111'])
    assert.equal(blockedAddress(address), undefined, `${address} is public`);
});

test('a URL to a blocked address, or a name resolving to one, is refused naming the url', async () => {
  const policy = new TargetPolicy(
    [],
    table({ localhost: [['127.0.0.1']], 'meta.test': [['169.254.169.254']] }),
  );
  await assert.rejects(
    policy.check('https://169.254.169.254/latest/meta-data'),
    refused(/169\.254\.169\.254/),
  );
  await assert.rejects(policy.check('https://10.0.0.1/hook'), refused(/private, loopback/));
  await assert.rejects(policy.check('https://[::1]:8443/hook'), refused(/private, loopback/));
  await assert.rejects(policy.check('https://localhost/hook'), refused(/resolves to 127\.0\.0\.1/));
  await assert.rejects(policy.check('https://meta.test/'), refused(/resolves to 169\.254\.169\.254/));
  await assert.rejects(policy.check('https://nowhere.test/'), refused(/does not resolve/));
  await assert.rejects(policy.check('ftp://93.184.216.34/'), refused(/https/));
  await assert.rejects(policy.check('https://user:pw@93.184.216.34/'), refused(/user name or password/));
  await assert.rejects(policy.check('not a url'), refused(/absolute URL/));
});

test('public targets need https; the allow-list admits hosts by name, address or CIDR, over http too', async () => {
  const resolve = table({
    'hooks.example': [['93.184.216.34']],
    localhost: [['127.0.0.1', '::1']],
    'lab.test': [['10.1.2.3']],
  });
  const strict = new TargetPolicy([], resolve);
  const ok = await strict.check('https://hooks.example/in');
  assert.deepEqual([ok.address, ok.family, ok.url.hostname], ['93.184.216.34', 4, 'hooks.example']);
  await assert.rejects(strict.check('http://hooks.example/in'), refused(/must be an https/));

  const allowing = new TargetPolicy(['localhost', '127.0.0.1', '10.0.0.0/8'], resolve);
  assert.equal((await allowing.check('http://localhost:9000/x')).address, '127.0.0.1');
  assert.equal((await allowing.check('http://127.0.0.1:9000/x')).address, '127.0.0.1');
  assert.equal((await allowing.check('http://lab.test/x')).address, '10.1.2.3');
  await assert.rejects(allowing.check('https://[::1]/x'), refused(/private, loopback/));
  await assert.rejects(allowing.check('http://hooks.example/in'), refused(/must be an https/));
  assert.throws(() => new TargetPolicy(['10.0.0.0/40']), /prefix length/);
});

test('the check at delivery resolves again: a name that now points inside is refused (DNS rebinding)', async () => {
  const policy = new TargetPolicy([], table({ 'rebind.test': [['93.184.216.34'], ['127.0.0.1']] }));
  assert.equal((await policy.check('https://rebind.test/')).address, '93.184.216.34');
  await assert.rejects(policy.check('https://rebind.test/'), refused(/resolves to 127\.0\.0\.1/));
});
