// The built CLI's tenants, quotas, api-keys and images against the real control plane (one platform
// for the file: PostgreSQL with DATABASE_URL, else PGlite): JSON compared with golden files, tables
// that fit a narrow terminal, YAML that parses, exit codes named by the API's codes, keys that work
// until revoked, and a reseller that cannot see another reseller's tenants.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { waitFor } from '@cphone/proto/testing';
import { parse } from 'yaml';
// @ts-expect-error plain JavaScript build script, no types
import { BUNDLE } from '../../cli/build.mjs';
import { type CliPlatform, type CliResult, normalize, startCliPlatform } from './harness.js';

const GOLDEN = join(import.meta.dirname, 'golden');

let p: CliPlatform;
before(async () => {
  p = await startCliPlatform({ agent: false });
});
after(() => p?.close());

async function ok(args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await p.cli(args, { env });
  assert.equal(r.code, 0, `cphone ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

async function fails(args: string[], code: number, env: Record<string, string> = {}): Promise<CliResult> {
  const r = await p.cli(args, { env });
  assert.equal(r.code, code, `cphone ${args.join(' ')}: want exit ${code}, got ${r.code}: ${r.stderr}`);
  return r;
}

/** Compares with tests/cli/golden/<name>.json after normalizing; UPDATE_GOLDEN=1 rewrites the file. */
async function golden(name: string, text: string): Promise<void> {
  const got = normalize(text);
  const file = join(GOLDEN, `${name}.json`);
  if (process.env.UPDATE_GOLDEN) await writeFile(file, got);
  assert.equal(got, await readFile(file, 'utf8'), `golden ${name}.json`);
}

function fits(table: string, width: number): void {
  const lines = table.trimEnd().split('\n');
  assert.ok(lines.length >= 2, `a header and rows: ${table}`);
  for (const line of lines) assert.ok([...line].length <= width, `"${line}" is wider than ${width}`);
}

/** A new key's secret, printed alone on stdout. */
async function newKey(name: string, role: string, tenant: string): Promise<string> {
  return (await ok(['api-keys', 'create', '--name', name, '--role', role, '--tenant', tenant])).trim();
}

test('tenants: create, get and describe (golden JSON), narrow tables, YAML', async () => {
  assert.match(
    await ok(['tenants', 'create', '--name', 'acme', '--kind', 'reseller', '--label', 'tier=gold']),
    /^tenant\/acme created \(tnt_\w+\)\n$/,
  );
  await ok(['tenants', 'create', '--name', 'shop', '--kind', 'customer', '--parent', 'acme']);
  await golden('tenants-get', await ok(['tenants', 'get', 'acme', 'shop', '-o', 'json']));
  await golden('tenants-describe', await ok(['tenants', 'describe', 'shop', '-o', 'json']));

  const table = await ok(['tenants', 'get', '-o', 'wide'], { COLUMNS: '60' });
  fits(table, 60);
  assert.match(table, /^NAME +ID +KIND +STATE +PARENT +AGE +LABELS\n/);
  fits(
    await ok(['tenants', 'describe', 'shop'], { COLUMNS: '60' }).then((t) => t.slice(t.indexOf('  TENANT'))),
    60,
  );

  const doc = parse(await ok(['tenants', 'get', '-o', 'yaml', '-l', 'tier=gold'])) as {
    items: { displayName: string; kind: string; labels: Record<string, string> }[];
  };
  assert.deepEqual(
    doc.items.map((t) => [t.displayName, t.kind, t.labels]),
    [['acme', 'TENANT_KIND_RESELLER', { tier: 'gold' }]],
  );
  assert.deepEqual((await ok(['tenants', 'get', '--kind', 'customer', '-o', 'name'])).split('\n').length, 2);

  await ok(['tenants', 'update', 'shop', '--name', 'shop-gmbh', '--label', 'trial=yes']);
  await ok(['tenants', 'update', 'shop-gmbh', '--label', 'trial-', '--label', 'plan=pro']);
  const updated = JSON.parse(await ok(['tenants', 'get', 'shop-gmbh', '-o', 'json']));
  assert.deepEqual([updated.displayName, updated.labels], ['shop-gmbh', { plan: 'pro' }]);
  await ok(['tenants', 'update', 'shop-gmbh', '--name', 'shop']);

  await fails(['tenants', 'get', 'nosuch'], 4);
  await fails(['tenants', 'describe', 'tnt_00000000000000000000000000'], 4);
  const bad = await fails(['tenants', 'create', '--name', ' ', '--kind', 'customer'], 3);
  assert.match(bad.stderr, /INVALID_ARGUMENT: .*display_name/);
  await fails(['tenants', 'create', '--name', 'x'], 2);
});

test('quotas: set some limits, the others keep theirs; usage up the path; bad values', async () => {
  await ok(['quotas', 'set', 'acme', '--max-devices', '50', '--max-vcpu', '64', '--max-memory', '256Gi']);
  await ok(['quotas', 'set', 'shop', '--max-devices', '10', '--max-running-devices', '4']);
  await ok(['quotas', 'set', 'shop', '--max-memory', '16Gi', '--period', 'day']);
  const quota = JSON.parse(await ok(['quotas', 'get', 'shop', '-o', 'json']));
  assert.deepEqual(
    [quota.maxDevices, quota.maxRunningDevices, quota.maxMemoryMib, quota.maxVcpuMillicores, quota.period],
    [10, 4, '16384', undefined, 'QUOTA_PERIOD_DAY'],
  );
  await golden('quotas-get', await ok(['quotas', 'get', 'shop', '-o', 'json']));
  await ok(['quotas', 'set', 'shop', '--max-running-devices', 'none']);
  assert.equal(JSON.parse(await ok(['quotas', 'get', 'shop', '-o', 'json'])).maxRunningDevices, undefined);
  await ok(['quotas', 'set', 'shop', '--device-minutes-action', 'stop-running']);
  const action = JSON.parse(await ok(['quotas', 'get', 'shop', '-o', 'json']));
  assert.deepEqual(
    [action.deviceMinutesAction, action.maxDevices],
    ['DEVICE_MINUTES_ACTION_STOP_RUNNING', 10],
    'the action is set, the limits keep theirs',
  );
  await fails(['quotas', 'set', 'shop', '--device-minutes-action', 'explode'], 2);
  await ok(['quotas', 'set', 'shop', '--device-minutes-action', 'refuse-starts']);

  const usage = await ok(['quotas', 'usage', 'shop'], { COLUMNS: '60' });
  fits(usage, 60);
  assert.deepEqual(
    usage
      .trimEnd()
      .split('\n')
      .map((l) => l.split(/ +/).slice(0, 2)),
    [
      ['TENANT', 'DEVICES'],
      ['shop', '0/10'],
      ['acme', '0/50'],
      ['Platform', '0/-'],
    ],
  );
  await golden('quotas-usage', await ok(['quotas', 'usage', 'shop', '-o', 'json']));

  // A child's limit may not exceed its parent's: the API names the field.
  const over = await fails(['quotas', 'set', 'shop', '--max-devices', '51'], 3);
  assert.match(over.stderr, /INVALID_ARGUMENT: .*max_devices/);
  await fails(['quotas', 'set', 'shop', '--max-devices', 'many'], 2);
  await fails(['quotas', 'set', 'shop'], 2);
});

test('api-keys: create prints the secret once, the key works until revoked; golden JSON', async () => {
  const created = JSON.parse(
    await ok([
      'api-keys',
      'create',
      '--name',
      'acme-admin',
      '--role',
      'tenant-admin',
      '--tenant',
      'acme',
      '--expires',
      '30d',
      '-o',
      'json',
    ]),
  );
  assert.match(created.secret, /^key_\w+\.cpk_\w+$/);
  assert.equal(created.apiKey.displayName, 'acme-admin');
  // Before its first use: no lastUseTime yet.
  await golden('api-keys-get', await ok(['api-keys', 'get', 'acme-admin', '--tenant', 'acme', '-o', 'json']));
  const secret = created.secret as string;
  const asAcme = { CPHONE_API_KEY: secret };
  // The reseller's key sees itself and its customer, nothing else.
  const seen = JSON.parse(await ok(['tenants', 'get', '-o', 'json'], asAcme)) as {
    items: { displayName: string }[];
  };
  assert.deepEqual(
    seen.items.map((t) => t.displayName),
    ['acme', 'shop'],
  );

  fits(await ok(['api-keys', 'get', '--tenant', 'acme'], { COLUMNS: '60' }), 60);
  assert.match(
    await ok(['api-keys', 'get', '--tenant', 'acme']),
    /^NAME +ID +ROLE +STATE +EXPIRES +LAST USED +AGE\nacme-admin +key_\w+ +tenant-admin +Active +in 30d +(never|\d+s ago) +\d+s\n$/,
  );

  // Without --yes nothing is revoked.
  const refused = await fails(['api-keys', 'revoke', 'acme-admin', '--tenant', 'acme'], 2);
  assert.match(refused.stderr, /--yes/);
  await ok(['tenants', 'get'], asAcme);
  assert.equal(
    await ok(['api-keys', 'revoke', 'acme-admin', '--tenant', 'acme', '--yes']),
    'api-key/acme-admin revoked\n',
  );
  const gone = await fails(['tenants', 'get'], 5, asAcme);
  assert.match(gone.stderr, /UNAUTHENTICATED/);
  assert.equal(await ok(['api-keys', 'get', '--tenant', 'acme', '-o', 'name']), '');
  const all = JSON.parse(await ok(['api-keys', 'get', '--tenant', 'acme', '--all', '-o', 'json']));
  assert.ok(all.items[0].revokeTime, 'listed with --all, revoked');

  await fails(['api-keys', 'get', 'key_00000000000000000000000000'], 4);
  const fleet = await fails(['api-keys', 'create', '--name', 'x', '--role', 'ops', '--tenant', 'shop'], 3);
  assert.match(fleet.stderr, /INVALID_ARGUMENT: .*role/);
});

test("permissions: a customer's key cannot create tenants or raise its quota; another reseller's tenants are NOT_FOUND", async () => {
  const user = { CPHONE_API_KEY: await newKey('shop-user', 'tenant-user', 'shop') };
  const admin = { CPHONE_API_KEY: await newKey('shop-admin', 'tenant-admin', 'shop') };
  const denied = await fails(['tenants', 'create', '--name', 'sub', '--kind', 'customer'], 5, user);
  assert.match(denied.stderr, /PERMISSION_DENIED/);
  await fails(['quotas', 'set', 'shop', '--max-devices', '50'], 5, admin);
  await fails(['tenants', 'describe', 'acme'], 4, admin);

  // A second reseller with a customer: the first reseller's key finds neither, by id or by name.
  await ok(['tenants', 'create', '--name', 'globex', '--kind', 'reseller']);
  const other = JSON.parse(
    await ok([
      'tenants',
      'create',
      '--name',
      'globex-shop',
      '--kind',
      'customer',
      '--parent',
      'globex',
      '-o',
      'json',
    ]),
  );
  const acme = { CPHONE_API_KEY: await newKey('acme-ops', 'tenant-admin', 'acme') };
  const byId = await fails(['tenants', 'get', other.tenantId], 4, acme);
  assert.match(byId.stderr, /NOT_FOUND/);
  await fails(['tenants', 'describe', 'globex-shop'], 4, acme);
  await fails(['quotas', 'usage', other.tenantId], 4, acme);
  await fails(['api-keys', 'get', '--tenant', other.tenantId], 4, acme);
});

test('images: create from a file and from flags, get and describe (golden JSON), update, delete', async () => {
  const file = join(p.configHome, 'image.yaml');
  await writeFile(
    file,
    [
      'imageId: android-13-test',
      'displayName: Android 13 (test)',
      'containerImage: redroid/redroid:13.0.0-latest',
      'androidVersion: "13"',
      'sdkLevel: 33',
      'archs: [arm64]',
      'defaultSpec: {vcpuMillicores: 2000, memoryMib: 4096, storageGib: 16}',
      'minMemoryMib: 2048',
      'labels: {channel: stable}',
      '',
    ].join('\n'),
  );
  assert.equal(await ok(['images', 'create', '-f', file]), 'image/android-13-test created\n');
  await ok([
    'images',
    'create',
    '--id',
    'android-12-flags',
    '--name',
    'Android 12',
    '--container-image',
    'redroid/redroid:12.0.0-latest',
    '--android-version',
    '12',
    '--sdk',
    '31',
    '--arch',
    'arm64',
    '--cpu',
    '1',
    '--memory',
    '2Gi',
    '--min-memory',
    '1Gi',
    '--label',
    'channel=beta',
  ]);
  await golden('images-get', await ok(['images', 'get', '-l', 'channel=stable', '-o', 'json']));
  await golden('images-describe', await ok(['images', 'describe', 'Android 12', '-o', 'json']));
  fits(await ok(['images', 'get'], { COLUMNS: '60' }), 60);
  const text = await ok(['images', 'describe', 'android-13-test']);
  assert.match(text, /Defaults: +cpu 2, memory 4Gi, storage 16Gi/);
  assert.match(text, /Minimums: +cpu 0, memory 2Gi/);

  // Only the fields given change: the default spec keeps its cpu when the memory moves.
  await ok([
    'images',
    'update',
    'android-12-flags',
    '--state',
    'deprecated',
    '--memory',
    '3Gi',
    '--label',
    'channel-',
  ]);
  const changed = JSON.parse(await ok(['images', 'get', 'android-12-flags', '-o', 'json']));
  assert.deepEqual(
    [changed.state, changed.defaultSpec, changed.labels, changed.containerImage],
    [
      'IMAGE_STATE_DEPRECATED',
      { vcpuMillicores: 1000, memoryMib: 3072 },
      undefined,
      'redroid/redroid:12.0.0-latest',
    ],
  );
  assert.doesNotMatch(await ok(['images', 'get', '-o', 'name']), /android-12-flags/);
  assert.match(await ok(['images', 'get', '--all', '-o', 'name']), /android-12-flags/);

  const bad = await fails(['images', 'update', 'android-12-flags', '--min-memory', '8Gi'], 3);
  assert.match(bad.stderr, /INVALID_ARGUMENT: .*default_spec\.memory_mib/);
  await fails(['images', 'create', '--id', 'Bad_Id', '--name', 'x', '--container-image', 'y'], 3);
  await fails(['images', 'describe', 'nosuch'], 4);

  await fails(['images', 'delete', 'android-12-flags'], 2);
  await ok(['images', 'get', 'android-12-flags']);
  assert.equal(
    await ok(['images', 'delete', 'android-12-flags', '--yes']),
    'image/android-12-flags deleted\n',
  );
  await fails(['images', 'get', 'android-12-flags'], 4);
});

test('tenants delete: --yes required, children first, then gone', async () => {
  const refused = await fails(['tenants', 'delete', 'globex-shop'], 2);
  assert.match(refused.stderr, /--yes/);
  await ok(['tenants', 'get', 'globex-shop']);
  const parent = await fails(['tenants', 'delete', 'globex', '--yes'], 7);
  assert.match(parent.stderr, /FAILED_PRECONDITION: .*child/);
  assert.equal(
    await ok(['tenants', 'delete', 'globex-shop', 'globex', '--yes']),
    'tenant/globex-shop deleted\ntenant/globex deleted\n',
  );
  await fails(['tenants', 'get', 'globex'], 4);
});

test('tenants get --watch prints the list, then each new tenant, until Ctrl-C', async () => {
  const child = spawn(process.execPath, [BUNDLE as string, 'tenants', 'get', '--watch', '-o', 'json'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...p.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const names = () =>
    out
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { displayName: string }).displayName);
  try {
    await waitFor('the first list', names, (n) => n.includes('acme'), { timeoutMs: 20_000 });
    await ok(['tenants', 'create', '--name', 'watched', '--kind', 'customer', '--parent', 'acme']);
    await waitFor('the new tenant', names, (n) => n.includes('watched'), { timeoutMs: 20_000 });
    assert.equal(names().filter((n) => n === 'acme').length, 1, 'an unchanged tenant is printed once');
  } finally {
    child.kill('SIGINT');
  }
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
});
