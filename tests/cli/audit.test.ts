// The built CLI's `cphone audit get` against the real control plane (PostgreSQL with DATABASE_URL,
// else PGlite): the events of calls made with the CLI itself, filtered by method, outcome, resource
// and actor, followed over pages, as a table, wide, JSON and YAML; refused flags exit 2.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { parse } from 'yaml';
import { type CliPlatform, startCliPlatform } from './harness.js';

let p: CliPlatform;
let tenantId: string;

before(async () => {
  p = await startCliPlatform({ agent: false });
  const made = await p.cli(['tenants', 'create', '--name', 'audited', '--kind', 'customer']);
  assert.equal(made.code, 0, made.stderr);
  tenantId = /\((tnt_\w+)\)/.exec(made.stdout)?.[1] ?? '';
  assert.ok(tenantId);
  const renamed = await p.cli(['tenants', 'update', 'audited', '--name', 'audited-2']);
  assert.equal(renamed.code, 0, renamed.stderr);
  // An attempt with a key that does not exist (refused at its first call, GetTenant): recorded as anonymous.
  const refused = await p.cli(['tenants', 'delete', tenantId, '--yes'], {
    env: { CPHONE_API_KEY: 'key_0nosuchkey.cpk_wrong' },
  });
  assert.equal(refused.code, 5, refused.stderr);
});
after(() => p?.close());

interface Event {
  auditEventId: string;
  method: string;
  resourceType?: string;
  resourceId?: string;
  outcome: string;
  actor?: { kind?: string; id?: string };
  detail?: Record<string, unknown>;
}

async function events(args: string[]): Promise<Event[]> {
  const r = await p.cli(['audit', 'get', ...args, '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { items: Event[] }).items;
}

test('audit get: filters by method, resource, outcome and actor; JSON and YAML of the API events', async () => {
  const updates = await events(['--method', 'TenantService/UpdateTenant']);
  assert.equal(updates.length, 1);
  assert.equal(updates[0]?.method, 'cphone.api.v1.TenantService/UpdateTenant');
  assert.equal(updates[0]?.resourceType, 'tenant');
  assert.equal(updates[0]?.resourceId, tenantId);
  assert.deepEqual(updates[0]?.detail, { update_mask: ['display_name'] });

  const onTenant = await events(['--resource', `tenant/${tenantId}`, '--descendants']);
  assert.deepEqual(
    onTenant.map((e) => `${e.method.replace('cphone.api.v1.', '')} ${e.outcome}`),
    [
      'TenantService/GetTenant unauthenticated',
      'TenantService/UpdateTenant ok',
      'TenantService/CreateTenant ok',
    ],
    'newest first',
  );
  const anonymous = await events(['--descendants', '--actor', 'anonymous', '--outcome', 'unauthenticated']);
  assert.equal(anonymous[0]?.actor?.kind, 'ACTOR_KIND_ANONYMOUS');
  assert.equal(anonymous[0]?.actor?.id, 'key_0nosuchkey');

  const yaml = await p.cli(['audit', 'list', '--method', 'TenantService/CreateTenant', '-o', 'yaml']);
  assert.equal(yaml.code, 0, yaml.stderr);
  assert.equal((parse(yaml.stdout) as { items: Event[] }).items[0]?.resourceId, tenantId);
});

test('audit get: --limit follows pages up to it; tables and wide tables', async () => {
  const all = await events(['--descendants']);
  assert.ok(all.length >= 3);
  const two = await events(['--descendants', '--limit', '2']);
  assert.deepEqual(
    two.map((e) => e.auditEventId),
    all.slice(0, 2).map((e) => e.auditEventId),
  );
  const since = await events(['--descendants', '--since', '1h']);
  assert.equal(since.length, all.length);
  assert.deepEqual(await events(['--descendants', '--until', '2000-01-01T00:00:00Z']), []);

  const table = await p.cli(['audit', 'get', '--descendants']);
  assert.equal(table.code, 0, table.stderr);
  const [header, ...rows] = table.stdout.trimEnd().split('\n');
  assert.match(header ?? '', /^AGE\s+METHOD\s+RESOURCE\s+ACTOR\s+OUTCOME\s+TENANT$/);
  assert.ok(rows.some((r) => /TenantService\/UpdateTenant\s+tenant\/tnt_\w+\s+ApiKey\/key_\w+\s+ok/.test(r)));
  const wide = await p.cli(['audit', 'get', '--descendants', '-o', 'wide']);
  assert.match(wide.stdout.split('\n')[0] ?? '', /ADDRESS\s+REQUEST\s+MESSAGE/);
  assert.match(wide.stdout, /127\.0\.0\.1/);
});

test('audit get: bad flags exit 2, a bad outcome is INVALID_ARGUMENT (3)', async () => {
  assert.equal((await p.cli(['audit', 'get', '--since', 'yesterday'])).code, 2);
  assert.equal((await p.cli(['audit', 'get', '--limit', '0'])).code, 2);
  const bad = await p.cli(['audit', 'get', '--outcome', 'NotFound']);
  assert.equal(bad.code, 3, bad.stderr);
  assert.match(bad.stderr, /outcome/);
});
