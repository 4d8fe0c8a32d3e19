// The API edge as a careless or hostile client meets it, over a real socket, in both Connect codecs:
// bad text in any string field, oversize values, bounded error echoes and audit rows, and page
// tokens a client has edited.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { create, type DescMessage, type MessageInitShape, toBinary } from '@bufbuild/protobuf';
import {
  BatchCreateDevicesRequestSchema,
  CreateTenantRequestSchema,
  GetDeviceRequestSchema,
  ListApiKeysRequestSchema,
  TenantKind,
} from '@cphone/proto';
import { startTestControlPlane, type TestControlPlane } from '../test-control-plane.js';

let testPlane: TestControlPlane;
let url: string;
let token: string;

before(async () => {
  testPlane = await startTestControlPlane();
  url = testPlane.plane.httpUrl;
  token = testPlane.plane.bootstrapToken ?? '';
});

after(() => testPlane.close());

interface Answer {
  status: number;
  code: string;
  message: string;
}

/** One unary call with a body as given (Connect protocol), answered as status, code and message. */
async function rpc(path: string, body: Uint8Array | string, contentType: string): Promise<Answer> {
  const response = await fetch(`${url}/cphone.api.v1.${path}`, {
    method: 'POST',
    body,
    headers: { 'content-type': contentType, authorization: `Bearer ${token}` },
  });
  const text = await response.text();
  if (response.ok) return { status: response.status, code: 'ok', message: '' };
  const error = JSON.parse(text) as { code: string; message: string };
  return { status: response.status, code: error.code, message: error.message };
}

const json = (path: string, message: unknown) => rpc(path, JSON.stringify(message), 'application/json');

function binary<D extends DescMessage>(path: string, schema: D, init: MessageInitShape<D>) {
  return rpc(path, toBinary(schema, create(schema, init)), 'application/proto');
}

/** `message` encoded, with the first `marker` byte replaced by `bytes` (in place of one ASCII letter). */
function patched<D extends DescMessage>(
  schema: D,
  init: MessageInitShape<D>,
  marker: string,
  bytes: number[],
) {
  const encoded = Buffer.from(toBinary(schema, create(schema, init)));
  const at = encoded.indexOf(marker);
  assert.ok(at >= 0);
  return Buffer.concat([encoded.subarray(0, at), Buffer.from(bytes), encoded.subarray(at + 1)]);
}

function assertRefused(answer: Answer, path: string, reason: RegExp) {
  assert.deepEqual(
    { status: answer.status, code: answer.code },
    { status: 400, code: 'invalid_argument' },
    answer.message,
  );
  assert.ok(answer.message.startsWith(`invalid ${path} `), `${answer.message} names ${path}`);
  assert.match(answer.message, reason);
}

const NUL = /must not contain a NUL character/;
const NOT_UTF8 = /must be valid UTF-8/;

describe('a NUL character in any string field is INVALID_ARGUMENT naming the field', () => {
  const cases: [string, string, DescMessage, object][] = [
    ['an id on a read', 'DeviceService/GetDevice', GetDeviceRequestSchema, { deviceId: 'dev_\0' }],
    [
      'a display name',
      'TenantService/CreateTenant',
      CreateTenantRequestSchema,
      { kind: TenantKind.CUSTOMER, displayName: 'shop\0' },
    ],
    [
      'a request id',
      'TenantService/CreateTenant',
      CreateTenantRequestSchema,
      { kind: TenantKind.CUSTOMER, displayName: 'shop', requestId: 'r\0' },
    ],
    [
      'a label value',
      'TenantService/CreateTenant',
      CreateTenantRequestSchema,
      { kind: TenantKind.CUSTOMER, displayName: 'shop', labels: { tier: 'gold\0' } },
    ],
    ['a page token', 'ApiKeyService/ListApiKeys', ListApiKeysRequestSchema, { pageToken: 'tok\0' }],
  ];
  const paths = ['device_id', 'display_name', 'request_id', 'labels["tier"]', 'page_token'];
  for (const [[what, method, schema, init], path] of cases.map((c, i) => [c, paths[i] ?? ''] as const)) {
    test(`${what}, in JSON and in binary`, async () => {
      assertRefused(await json(method, init), path, NUL);
      assertRefused(await binary(method, schema, init as MessageInitShape<typeof schema>), path, NUL);
    });
  }

  test('a label key deep in a batch names its path', async () => {
    const init = { requests: [{}, {}, { labels: { 'a\0': 'v' } }] };
    const path = 'requests[2].labels["a\\u0000"]';
    assertRefused(await json('DeviceService/BatchCreateDevices', init), path, NUL);
    assertRefused(
      await binary('DeviceService/BatchCreateDevices', BatchCreateDevicesRequestSchema, init),
      path,
      NUL,
    );
  });
});

describe('text that is not UTF-8 is INVALID_ARGUMENT naming the field, in both codecs', () => {
  test('binary: bytes that are not UTF-8 in an id, and in a map key deep in a batch', async () => {
    const id = patched(GetDeviceRequestSchema, { deviceId: 'dev_X' }, 'X', [0xff]);
    assertRefused(await rpc('DeviceService/GetDevice', id, 'application/proto'), 'device_id', NOT_UTF8);
    const batch = patched(
      BatchCreateDevicesRequestSchema,
      { requests: [{}, {}, { labels: { aZ: 'v' } }] },
      'Z',
      [0xc0],
    );
    assertRefused(
      await rpc('DeviceService/BatchCreateDevices', batch, 'application/proto'),
      'requests[2].labels["a\ufffd"]',
      NOT_UTF8,
    );
  });

  test('JSON: raw bytes that are not UTF-8, and an escaped lone surrogate', async () => {
    const raw = Buffer.concat([
      Buffer.from('{"deviceId":"dev_'),
      Buffer.from([0xed, 0xa0, 0x80]),
      Buffer.from('"}'),
    ]);
    assertRefused(await rpc('DeviceService/GetDevice', raw, 'application/json'), 'device_id', NOT_UTF8);
    const escaped = '{"requests":[{},{"displayName":"phone \\udc80"}]}';
    assertRefused(
      await rpc('DeviceService/BatchCreateDevices', escaped, 'application/json'),
      'requests[1].display_name',
      NOT_UTF8,
    );
  });

  test('gRPC-web gets the same refusal in its own framing', async () => {
    const message = patched(GetDeviceRequestSchema, { deviceId: 'dev_X' }, 'X', [0xfe]);
    const framed = Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message]);
    const response = await fetch(`${url}/cphone.api.v1.DeviceService/GetDevice`, {
      method: 'POST',
      body: framed,
      headers: { 'content-type': 'application/grpc-web+proto', authorization: `Bearer ${token}` },
    });
    const trailer = Buffer.from(await response.arrayBuffer())
      .subarray(5)
      .toString();
    assert.match(trailer, /grpc-status: 3\r\n/);
    assert.match(decodeURIComponent(trailer), /invalid device_id .*must be valid UTF-8/);
  });

  test('a frame marked compressed in a request that names no compression is INVALID_ARGUMENT', async () => {
    const message = toBinary(GetDeviceRequestSchema, create(GetDeviceRequestSchema, { deviceId: 'dev_1' }));
    const framed = Buffer.concat([Buffer.from([1, 0, 0, 0, message.length]), message]);
    const response = await fetch(`${url}/cphone.api.v1.DeviceService/GetDevice`, {
      method: 'POST',
      body: framed,
      headers: { 'content-type': 'application/grpc-web+proto', authorization: `Bearer ${token}` },
    });
    const trailer = decodeURIComponent(
      Buffer.from(await response.arrayBuffer())
        .subarray(5)
        .toString(),
    );
    assert.match(trailer, /grpc-status: 3\r\n/);
    assert.match(trailer, /is marked compressed but names no compression/);
  });

  test('a binary body that is no message at all is INVALID_ARGUMENT, not INTERNAL', async () => {
    const answer = await rpc('DeviceService/GetDevice', Buffer.from([0x0a, 0xff, 0xff]), 'application/proto');
    assertRefused(
      answer,
      'request',
      /is not a cphone\.api\.v1\.GetDeviceRequest in the protobuf binary format/,
    );
  });
});

describe('sizes and echoes are bounded', () => {
  test('a string beyond the edge bound is refused, its echo cut to a prefix and its size', async () => {
    const answer = await json('TenantService/CreateTenant', {
      kind: 'TENANT_KIND_CUSTOMER',
      displayName: 'x'.repeat(5 * 1024 * 1024),
    });
    assertRefused(answer, 'display_name', /must be at most 65536 characters/);
    assert.ok(answer.message.length < 400, `${answer.message.length} characters echoed`);
    assert.match(answer.message, /"x{100}"… \(5242880 bytes\)/);
  });

  test('a handler’s own error echoes a bounded prefix of the bad value', async () => {
    const answer = await json('TenantService/CreateTenant', {
      kind: 'TENANT_KIND_CUSTOMER',
      displayName: 'y'.repeat(60_000),
    });
    assertRefused(answer, 'display_name', /… \(60000 bytes\): must be 1-200 characters/);
    assert.ok(answer.message.length < 400, `${answer.message.length} characters echoed`);
  });

  test('audit rows hold a bounded, escaped resource, even for a refused request', async () => {
    const deviceId = `dev_${'z'.repeat(50_000)}`;
    assert.equal((await json('DeviceService/DeleteDevice', { deviceId })).code, 'not_found');
    assert.equal((await json('DeviceService/DeleteDevice', { deviceId: 'dev_\0' })).code, 'invalid_argument');
    await testPlane.plane.deps.audit.flush();
    const rows = await testPlane.plane.deps.db
      .selectFrom('audit_log')
      .select(['resource', 'outcome'])
      .where('method', '=', 'DeviceService/DeleteDevice')
      .orderBy('id')
      .execute();
    assert.deepEqual(
      rows.map((r) => r.outcome),
      ['not_found', 'invalid_argument'],
    );
    assert.ok((rows[0]?.resource.length ?? 0) <= 200, `${rows[0]?.resource.length} characters audited`);
    assert.match(rows[0]?.resource ?? '', /^deviceId=dev_z+…$/);
    assert.equal(rows[1]?.resource, 'deviceId=dev_\\u0000');
  });
});

describe('times a response could not carry back are refused, not stored', () => {
  test('an expiry in the last millisecond of 9999 is kept, and the keys still list', async () => {
    const created = await json('ApiKeyService/CreateApiKey', {
      displayName: 'far future',
      role: 'ROLE_TENANT_USER',
      expireTime: '9999-12-31T23:59:59.999999999Z',
    });
    assert.equal(created.code, 'ok', created.message);
    assert.equal((await json('ApiKeyService/ListApiKeys', { includeRevoked: true })).code, 'ok');
  });

  test('a drain timeout of millennia is INVALID_ARGUMENT, and the hosts still list', async () => {
    const enrolled = await fetch(`${url}/cphone.api.v1.HostService/EnrollHost`, {
      method: 'POST',
      body: JSON.stringify({ name: 'edge-host', arch: 'arm64' }),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    });
    const { host } = (await enrolled.json()) as { host: { hostId: string } };
    assertRefused(
      await json('HostService/DrainHost', { hostId: host.hostId, timeout: '253402300799s' }),
      'timeout',
      /must be a duration of at most 100 years/,
    );
    assert.equal((await json('HostService/ListHosts', {})).code, 'ok');
  });
});

describe('page tokens', () => {
  /** The token with its cursor moved to `cursor`, in whichever part carries the base64 JSON. */
  function edited(pageToken: string, cursor: string): string {
    return pageToken
      .split('.')
      .map((part) => {
        try {
          const payload = JSON.parse(Buffer.from(part, 'base64url').toString()) as { a?: string };
          if (typeof payload.a !== 'string') return part;
          return Buffer.from(JSON.stringify({ ...payload, a: cursor })).toString('base64url');
        } catch {
          return part;
        }
      })
      .join('.');
  }

  test('edited, truncated or made-up tokens are INVALID_ARGUMENT naming page_token', async () => {
    for (const name of ['a', 'b', 'c']) {
      const created = await json('ApiKeyService/CreateApiKey', {
        displayName: `key ${name}`,
        role: 'ROLE_TENANT_USER',
      });
      assert.equal(created.code, 'ok');
    }
    const first = await fetch(`${url}/cphone.api.v1.ApiKeyService/ListApiKeys`, {
      method: 'POST',
      body: JSON.stringify({ pageSize: 1 }),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    });
    const { nextPageToken } = (await first.json()) as { nextPageToken: string };
    assert.ok(nextPageToken);
    assert.equal(
      (await json('ApiKeyService/ListApiKeys', { pageSize: 1, pageToken: nextPageToken })).code,
      'ok',
    );

    const forged = edited(nextPageToken, '');
    assert.notEqual(forged, nextPageToken);
    const made = Buffer.from(JSON.stringify({ a: '', h: 'x' })).toString('base64url');
    for (const pageToken of [forged, nextPageToken.slice(0, -3), made, `${nextPageToken}x`]) {
      assertRefused(
        await json('ApiKeyService/ListApiKeys', { pageSize: 1, pageToken }),
        'page_token',
        /is not a page token this service issued/,
      );
    }
  });
});
