// The built CLI's `cphone usage` against the real control plane (PostgreSQL with DATABASE_URL, else
// PGlite): sums in a time zone's days as JSON and as a table with its total, an export to stdout
// that resumes from a cursor with exactly the rest of the rows, and exit codes for bad input and
// another reseller's tenant.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { ingestUsage, insertTestDevice } from '@cphone/control-plane/testing';
import { agentv1, DeviceState, UsageBucket, UsageGrouping, UsageService } from '@cphone/proto';
import { type CliPlatform, startCliPlatform } from './harness.js';

const HOUR = 3_600_000;
const DEVICES = 20;
let p: CliPlatform;
// Two whole UTC days that ended before now.
const day0 = Math.floor(Date.now() / 86_400_000) * 86_400_000 - 3 * 86_400_000;
const date = (ms: number) => new Date(ms).toISOString().slice(0, 10);

before(async () => {
  p = await startCliPlatform({ agent: false });
  const db = p.h.plane.deps.db;
  const samples = [];
  for (let d = 0; d < DEVICES; d++) {
    const { deviceId } = await insertTestDevice(db, {
      hostId: p.h.hostId,
      tenantId: p.h.tenantId,
      placedAt: new Date(day0 - HOUR),
    });
    for (let h = 0; h < 48; h++) {
      const start = day0 + h * HOUR;
      samples.push(
        create(agentv1.UsageSampleSchema, {
          sequence: BigInt(samples.length + 1),
          deviceId,
          startTime: timestampFromDate(new Date(start)),
          endTime: timestampFromDate(new Date(start + 60_000)),
          vcpuMillicores: 2000,
          memoryMib: 4096,
          storageGib: 16,
          state: DeviceState.RUNNING,
        }),
      );
    }
  }
  await ingestUsage(db, p.h.hostId, samples, new Date());
});
after(() => p?.close());

async function run(args: string[], code = 0) {
  const r = await p.cli(args);
  assert.equal(r.code, code, `cphone ${args.join(' ')}: want exit ${code}, got ${r.code}: ${r.stderr}`);
  return r;
}

test('usage get: days in +05:30 as JSON add up to the samples; the table ends with the total', async () => {
  const range = [
    '--tenant',
    p.h.tenantId,
    '--from',
    date(day0),
    '--to',
    date(day0 + 3 * 86_400_000),
    '--tz',
    '+05:30',
  ];
  const doc = JSON.parse((await run(['usage', 'get', ...range, '--by', 'day', '-o', 'json'])).stdout) as {
    items: { deviceMinutes?: number; startTime: string }[];
    total: { deviceMinutes?: number };
  };
  const json = doc.items;
  assert.equal(doc.total.deviceMinutes, DEVICES * 48);
  // Local days of +05:30 cut the UTC days at 18:30: three local days hold the samples.
  assert.equal(json.length, 3);
  assert.equal(
    json.reduce((s, r) => s + (r.deviceMinutes ?? 0), 0),
    DEVICES * 48,
  );
  assert.equal(json[0]?.startTime, new Date(day0 - 5.5 * HOUR).toISOString().replace('.000Z', 'Z'));
  const table = (await run(['usage', 'get', ...range, '--by', 'tenant'])).stdout;
  assert.match(table, /GROUP\s+START\s+END\s+RUN MIN/);
  assert.match(table, new RegExp(`TOTAL.*\\b${DEVICES * 48}\\b`));
});

test('usage export: CSV to stdout; --resume goes on with exactly the rest', async () => {
  const args = [
    '--tenant',
    p.h.tenantId,
    '--from',
    date(day0),
    '--to',
    date(day0 + 2 * 86_400_000),
    '--by',
    'device,hour',
  ];
  const whole = (await run(['usage', 'export', ...args])).stdout;
  const lines = whole.trimEnd().split('\n');
  assert.equal(lines.length, 1 + DEVICES * 48, 'a header and a row per device and hour');
  assert.match(lines[0] ?? '', /^tenant_id,device_id,start_time,end_time,device_minutes/);
  // The cursor after the first chunk, as an interrupted export prints it.
  const client = p.h.client(UsageService);
  const stream = client.exportUsage({
    tenantId: p.h.tenantId,
    startTime: timestampFromDate(new Date(day0)),
    endTime: timestampFromDate(new Date(day0 + 2 * 86_400_000)),
    groupBy: UsageGrouping.DEVICE,
    bucket: UsageBucket.HOUR,
  });
  let first = '';
  let cursor = '';
  for await (const chunk of stream) {
    first = Buffer.from(chunk.csvChunk).toString();
    cursor = chunk.cursor;
    break;
  }
  assert.ok(cursor && first.length < whole.length, 'the export came in several chunks');
  const rest = (await run(['usage', 'export', ...args, '--resume', cursor])).stdout;
  assert.equal(first + rest, whole);
  const ndjson = (await run(['usage', 'export', ...args, '--format', 'ndjson'])).stdout.trimEnd().split('\n');
  assert.equal(ndjson.length, DEVICES * 48);
  assert.equal((JSON.parse(ndjson[0] ?? '{}') as { deviceSeconds?: string }).deviceSeconds, '60');
});

test('usage: bad zone is exit 3, a bad --by exit 2, a tenant out of sight exit 4', async () => {
  const bad = await run(
    ['usage', 'get', '--tz', '+05:07', '--from', date(day0), '--to', date(day0 + 86_400_000)],
    3,
  );
  assert.match(bad.stderr, /time_zone/);
  await run(['usage', 'get', '--by', 'week'], 2);
  await run(['usage', 'get', '--tenant', 'tnt_nobody_knows_this_one'], 4);
});
