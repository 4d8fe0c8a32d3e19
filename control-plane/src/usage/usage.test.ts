// Usage API over PGlite and PostgreSQL: sums equal a naive sum over the raw samples for random
// trees, ranges, zones and groupings; scoping; export resume; retention; bad input.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code } from '@connectrpc/connect';
import {
  agentv1,
  DeviceState,
  UsageBucket,
  UsageExportFormat,
  UsageGrouping,
  UsageService,
} from '@cphone/proto';
import { sql } from 'kysely';
import { connectError, startTestApi, type TestApi } from '../api/test-api.js';
import { PLATFORM_TENANT_ID as PLATFORM } from '../auth/bootstrap.js';
import { enrollTestHost, insertTestDevice } from '../gateway/testing.js';
import { migrateTo, migrateToLatest } from '../store/migrate.js';
import type { Database } from '../store/schema.js';
import { availableDatabaseKinds, createTestDatabase, type TestDatabase } from '../store/test-database.js';
import { ingestUsage } from './intake.js';
import { dropExpiredUsagePartitions, usagePartitions } from './partitions.js';
import { isRunningState } from './rollups.js';
import type { BucketUnit } from './time-zone.js';
import { type UsageGroupBy, type UsageRow, usageTotals } from './usage-query.js';
import { usageService } from './usage-service.js';

/** A small deterministic generator, so a failure replays. */
function random(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T,
  };
}

const MIN = 60_000;
const SLOT = 15 * MIN;
const DAY = 86_400_000;
// Across the October/November partition boundary and New York's return to standard time (1 Nov).
const T0 = Date.UTC(2026, 9, 28);
const T1 = Date.UTC(2026, 10, 4);
const NOW = new Date(Date.UTC(2026, 10, 10));
const ZONES = ['', '+00:00', '+05:30', '+05:45', '-03:30', 'America/New_York', 'Asia/Kolkata'];
const STATES = [DeviceState.RUNNING, DeviceState.STOPPED, DeviceState.BOOTING, DeviceState.RUNNING];
const STATE_NAMES: Record<number, string> = {
  [DeviceState.RUNNING]: 'running',
  [DeviceState.STOPPED]: 'stopped',
  [DeviceState.BOOTING]: 'booting',
};

interface Raw {
  tenant: string;
  device: string;
  host: string;
  label: string;
  start: number;
  end: number;
  state: string;
  vcpu: number;
  memory: number;
  storage: number;
  egress: number;
}

/** The local "wall" key of an instant in a zone, computed apart from the code under test. */
function localKey(ms: number, zone: string, unit: BucketUnit): string {
  if (unit === 'range') return 'range';
  let wall: Date;
  const fixed = /^([+-])(\d{2}):(\d{2})$/.exec(zone);
  if (zone === '' || fixed) {
    const off = fixed ? (fixed[1] === '-' ? -1 : 1) * (Number(fixed[2]) * 60 + Number(fixed[3])) * MIN : 0;
    wall = new Date(ms + off);
  } else {
    const parts = Object.fromEntries(
      new Intl.DateTimeFormat('en-US', {
        timeZone: zone,
        hourCycle: 'h23',
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
      })
        .formatToParts(ms)
        .map((p) => [p.type, p.value]),
    );
    // In the repeated hour of a fall-back the two local hours differ by their offset.
    const offset = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'shortOffset' })
      .formatToParts(ms)
      .find((p) => p.type === 'timeZoneName')?.value;
    const key = `${parts.year}-${parts.month}-${parts.day}`;
    if (unit === 'month') return key.slice(0, 7);
    if (unit === 'day') return key;
    return `${key} ${parts.hour} ${offset}`;
  }
  const iso = wall.toISOString();
  if (unit === 'month') return iso.slice(0, 7);
  if (unit === 'day') return iso.slice(0, 10);
  return iso.slice(0, 13);
}

function naive(
  raw: readonly Raw[],
  q: { tenants: string[]; start: number; end: number; zone: string; unit: BucketUnit; groupBy: UsageGroupBy },
) {
  const out = new Map<
    string,
    {
      run: bigint;
      stop: bigint;
      vcpu: bigint;
      mem: bigint;
      sto: bigint;
      egress: bigint;
      devices: Set<string>;
    }
  >();
  for (const s of raw) {
    if (!q.tenants.includes(s.tenant) || s.start < q.start || s.start >= q.end) continue;
    const group = {
      tenant: s.tenant,
      device: `${s.tenant}/${s.device}`,
      host: s.host,
      image: 'img_test',
      label: s.label,
      subtree: '',
    }[q.groupBy];
    const key = `${group}|${localKey(s.start, q.zone, q.unit)}`;
    let v = out.get(key);
    if (!v) {
      v = { run: 0n, stop: 0n, vcpu: 0n, mem: 0n, sto: 0n, egress: 0n, devices: new Set() };
      out.set(key, v);
    }
    const seconds = BigInt(Math.floor((s.end - s.start) / 1000));
    const running = isRunningState(s.state);
    v.run += running ? seconds : 0n;
    v.stop += running ? 0n : seconds;
    v.vcpu += running ? seconds * BigInt(s.vcpu) : 0n;
    v.mem += running ? seconds * BigInt(s.memory) : 0n;
    v.sto += seconds * BigInt(s.storage);
    v.egress += BigInt(s.egress);
    v.devices.add(s.device);
  }
  return new Map(
    [...out].map(([k, v]) => [
      k,
      [v.run, v.stop, v.vcpu, v.mem, v.sto, v.egress, v.devices.size].map(String).join(' '),
    ]),
  );
}

/** A row's quantities as one comparable string. */
const figures = (...values: (bigint | number)[]) => values.map(String).join(' ');

function fromRows(rows: readonly UsageRow[], zone: string, unit: BucketUnit, groupBy: UsageGroupBy) {
  const out = new Map<string, string>();
  for (const r of rows) {
    const group = {
      tenant: r.tenantId,
      device: `${r.tenantId}/${r.deviceId}`,
      host: r.hostId,
      image: r.imageId,
      label: r.labelValue,
      subtree: '',
    }[groupBy];
    const key = `${group}|${localKey(r.start.getTime(), zone, unit)}`;
    assert.ok(!out.has(key), `one row per group and bucket: ${key}`);
    out.set(
      key,
      figures(
        r.runningSeconds,
        r.stoppedSeconds,
        r.vcpuMillicoreSeconds,
        r.memoryMibSeconds,
        r.storageGibSeconds,
        r.egressBytes,
        r.deviceCount,
      ),
    );
  }
  return out;
}

for (const kind of availableDatabaseKinds()) {
  describe(`usage on ${kind}`, () => {
    let store: TestDatabase<Database>;
    let api: TestApi;
    const raw: Raw[] = [];
    const tree = new Map<string, string | null>();
    const rng = random(kind === 'pglite' ? 7 : 11);

    const subtree = (id: string): string[] => [
      id,
      ...[...tree].filter(([, parent]) => parent === id).flatMap(([child]) => subtree(child)),
    ];

    before(async () => {
      store = await createTestDatabase<Database>({
        kind,
        setup: (db) => migrateToLatest(db).then(() => undefined),
      });
      api = await startTestApi({
        db: store.db,
        routes: (router, deps) => router.service(UsageService, usageService(deps)),
      });
      // A random tree: resellers under the platform, customers under them and under the platform.
      const resellers = ['r1', 'r2', 'r3'].slice(0, rng.int(2, 3));
      for (const r of resellers) {
        await api.tenant(r, 'reseller', PLATFORM);
        tree.set(r, null);
        for (let c = 0; c < rng.int(1, 3); c++) {
          await api.tenant(`${r}c${c}`, 'customer', r);
          tree.set(`${r}c${c}`, r);
        }
      }
      const hosts = [(await enrollTestHost(store.db)).hostId, (await enrollTestHost(store.db)).hostId];
      const tenants = [...tree.keys()];
      const devices: {
        id: string;
        tenant: string;
        host: string;
        label: string;
        vcpu: number;
        mem: number;
        sto: number;
      }[] = [];
      for (let i = 0; i < 9; i++) {
        const tenant = rng.pick(tenants);
        const host = rng.pick(hosts);
        const vcpu = rng.pick([1000, 2000, 4000]);
        const mem = rng.pick([2048, 4096, 6144]);
        const sto = rng.pick([8, 16, 32]);
        const { deviceId } = await insertTestDevice(store.db, {
          hostId: host,
          tenantId: tenant,
          vcpuMillicores: vcpu,
          memoryMib: mem,
          storageGib: sto,
          placedAt: new Date(T0 - DAY),
        });
        const label = rng.pick(['gold', 'silver', '']);
        if (label) {
          await store.db
            .updateTable('device')
            .set({ labels: JSON.stringify({ tier: label }) })
            .where('id', '=', deviceId)
            .execute();
        }
        devices.push({ id: deviceId, tenant, host, label, vcpu, mem, sto });
      }
      const perHost = new Map<string, agentv1.UsageSample[]>(hosts.map((h) => [h, []]));
      for (const d of devices) {
        for (let t = T0 + rng.int(0, 30) * MIN; t < T1; t += rng.int(1, 40) * MIN) {
          const start = t + rng.int(0, 59) * 1000;
          const end = start + rng.pick([60_000, 60_000, 60_000, 30_000, 90_500, 1000]);
          const state = rng.pick(STATES);
          // Stopped phones send nothing; running ones up to a few MB a minute, some nothing.
          const egress = isRunningState(STATE_NAMES[state] ?? '') ? rng.pick([0, 1, 1500, 4_000_000]) : 0;
          const list = perHost.get(d.host) ?? [];
          list.push(
            create(agentv1.UsageSampleSchema, {
              sequence: BigInt(list.length + 1),
              deviceId: d.id,
              tenantId: d.tenant,
              startTime: timestampFromDate(new Date(start)),
              endTime: timestampFromDate(new Date(end)),
              vcpuMillicores: d.vcpu,
              memoryMib: d.mem,
              storageGib: d.sto,
              state,
              egressBytes: BigInt(egress),
            }),
          );
          raw.push({
            tenant: d.tenant,
            device: d.id,
            host: d.host,
            label: d.label,
            start,
            end,
            state: STATE_NAMES[state] ?? 'unknown',
            vcpu: d.vcpu,
            memory: d.mem,
            storage: d.sto,
            egress,
          });
        }
      }
      for (const [host, samples] of perHost) {
        // Out of order, resent and overlapping batches, as reconnecting agents send them.
        for (let i = 0; i < samples.length; i += 300)
          await ingestUsage(store.db, host, samples.slice(i, i + 450), NOW);
        const again = await ingestUsage(store.db, host, samples.slice(0, 500), NOW);
        assert.equal(again.inserted, 0, 'a resent sample is stored once');
      }
    });

    after(async () => {
      await api?.close();
      await store?.close();
    });

    test('sums equal a naive sum over the raw samples (random trees, ranges, zones, groupings)', async () => {
      const stored = await store.db
        .selectFrom('usage_sample')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      assert.equal(Number(stored.n), raw.length, 'every sample stored exactly once');
      assert.deepEqual(
        (await usagePartitions(store.db)).map((p) => p.name),
        ['usage_sample_p202610', 'usage_sample_p202611'],
      );
      let compared = 0;
      for (let i = 0; i < 40; i++) {
        const root = rng.pick([PLATFORM, ...tree.keys()]);
        const descendants = rng.next() < 0.7;
        const tenants = descendants
          ? root === PLATFORM
            ? [PLATFORM, ...tree.keys()]
            : subtree(root)
          : [root];
        const a = T0 - DAY + rng.int(0, 9 * 96) * SLOT;
        const b = a + rng.int(1, 9 * 96) * SLOT;
        const zone = rng.pick(ZONES);
        const unit = rng.pick<BucketUnit>(['range', 'hour', 'day', 'month']);
        const groupBy = rng.pick<UsageGroupBy>(['tenant', 'device', 'host', 'image', 'label', 'subtree']);
        const rows = await usageTotals(store.db, {
          tenantIds: tenants,
          start: new Date(a),
          end: new Date(b),
          groupBy,
          bucket: unit,
          timeZone: zone,
          labelKey: 'tier',
        });
        const q = { tenants, start: a, end: b, zone, unit, groupBy };
        const expected = naive(raw, q);
        assert.deepEqual(fromRows(rows, zone, unit, groupBy), expected, JSON.stringify(q));
        compared += expected.size;
      }
      assert.ok(compared > 200, `rows compared: ${compared}`);
    });

    test('QueryUsage pages through the same rows, with totals over all of them', async () => {
      const client = api.client(UsageService, await api.token('r1', 'tenant_admin'));
      for (const [zone, bucket, groupBy] of [
        ['+05:45', UsageBucket.DAY, UsageGrouping.DEVICE],
        ['America/New_York', UsageBucket.HOUR, UsageGrouping.TENANT],
        ['-03:30', UsageBucket.UNSPECIFIED, UsageGrouping.DAY],
        ['+05:30', UsageBucket.MONTH, UsageGrouping.LABEL],
      ] as const) {
        const request = {
          includeDescendants: true,
          startTime: timestampFromDate(new Date(T0)),
          endTime: timestampFromDate(new Date(T1)),
          timeZone: zone,
          bucket,
          groupBy,
          labelKey: 'tier',
          pageSize: rng.int(1, 7),
        };
        const seen = [];
        let token = '';
        let total: bigint | undefined;
        do {
          const page = await client.queryUsage({ ...request, pageToken: token });
          seen.push(...page.usageRecords);
          total = page.total?.deviceSeconds;
          assert.equal(page.total?.tenantId, 'r1');
          token = page.nextPageToken;
        } while (token);
        const unit: BucketUnit =
          bucket === UsageBucket.HOUR ? 'hour' : bucket === UsageBucket.MONTH ? 'month' : 'day';
        const by: UsageGroupBy =
          groupBy === UsageGrouping.DEVICE ? 'device' : groupBy === UsageGrouping.LABEL ? 'label' : 'tenant';
        const expected = naive(raw, { tenants: subtree('r1'), start: T0, end: T1, zone, unit, groupBy: by });
        const got = new Map(
          seen.map((r) => [
            `${{ tenant: r.tenantId, device: `${r.tenantId}/${r.deviceId}`, label: r.labelValue }[by as 'tenant']}|${localKey(Number(r.startTime?.seconds) * 1000, zone, unit)}`,
            figures(
              r.deviceSeconds,
              r.stoppedDeviceSeconds,
              r.vcpuMillicoreSeconds,
              r.memoryMibSeconds,
              r.storageGibSeconds,
              r.egressBytes,
              r.deviceCount,
            ),
          ]),
        );
        assert.deepEqual(got, expected, `${zone} ${UsageBucket[bucket]} ${UsageGrouping[groupBy]}`);
        const sum = seen.reduce((s, r) => s + r.deviceSeconds, 0n);
        assert.equal(total, sum, 'the total is the sum of every row');
        for (const r of seen) assert.equal(r.deviceMinutes, Number(r.deviceSeconds) / 60);
      }
    });

    test('a tenant never sees a sibling or an ancestor; tenant users are refused', async () => {
      const r1 = api.client(UsageService, await api.token('r1', 'tenant_admin'));
      const range = { startTime: timestampFromDate(new Date(T0)), endTime: timestampFromDate(new Date(T1)) };
      await assert.rejects(r1.queryUsage({ ...range, tenantId: 'r2' }), connectError(Code.NotFound, /r2/));
      await assert.rejects(r1.queryUsage({ ...range, tenantId: PLATFORM }), connectError(Code.NotFound));
      const customer = api.client(UsageService, await api.token('r1c0', 'tenant_admin'));
      await assert.rejects(customer.queryUsage({ ...range, tenantId: 'r1' }), connectError(Code.NotFound));
      const other = raw.find((s) => !subtree('r1').includes(s.tenant));
      if (other) {
        await assert.rejects(
          r1.queryUsage({ ...range, includeDescendants: true, deviceId: other.device }),
          connectError(Code.NotFound, /device/),
        );
      }
      const user = api.client(UsageService, await api.token('r1', 'tenant_user'));
      await assert.rejects(user.queryUsage(range), connectError(Code.PermissionDenied));
      const own = await r1.queryUsage({ ...range, includeDescendants: true, groupBy: UsageGrouping.TENANT });
      for (const r of own.usageRecords) assert.ok(subtree('r1').includes(r.tenantId), r.tenantId);
    });

    test('bad input is INVALID_ARGUMENT naming the field and the value', async () => {
      const client = api.client(UsageService, api.adminToken);
      const at = (ms: number) => timestampFromDate(new Date(ms));
      const range = { startTime: at(T0), endTime: at(T1) };
      const cases: [object, RegExp][] = [
        [{ ...range, timeZone: 'Mars/Olympus' }, /time_zone "Mars\/Olympus"/],
        [{ ...range, timeZone: '+05:07' }, /time_zone "\+05:07"/],
        [{ startTime: at(T1), endTime: at(T0) }, /end_time .*must be after start_time/],
        [{ startTime: at(T0), endTime: at(T0 + 400 * DAY) }, /end_time .*366 days/],
        [{ startTime: at(T0 + 60_000), endTime: at(T1) }, /start_time .*15 minutes/],
        [{ endTime: at(T1) }, /start_time/],
        [{ ...range, groupBy: UsageGrouping.LABEL }, /label_key/],
        [{ ...range, groupBy: UsageGrouping.DAY, bucket: UsageBucket.HOUR }, /bucket "HOUR"/],
        [{ ...range, pageToken: 'forged' }, /page_token/],
      ];
      for (const [request, pattern] of cases) {
        await assert.rejects(client.queryUsage(request), connectError(Code.InvalidArgument, pattern));
      }
      await assert.rejects(
        collect(client.exportUsage({ ...range, resumeCursor: 'forged' })),
        connectError(Code.InvalidArgument, /resume_cursor/),
      );
    });

    async function collect(
      stream: AsyncIterable<{ csvChunk: Uint8Array; ndjsonChunk: Uint8Array; cursor: string }>,
      stopAfter = Infinity,
    ) {
      const chunks: { text: string; cursor: string }[] = [];
      for await (const c of stream) {
        const bytes = c.csvChunk.length > 0 ? c.csvChunk : c.ndjsonChunk;
        chunks.push({ text: Buffer.from(bytes).toString('utf8'), cursor: c.cursor });
        if (chunks.length >= stopAfter) break;
      }
      return chunks;
    }

    test('an interrupted export resumed from its cursor gives exactly the rows of an uninterrupted one', async () => {
      const client = api.client(UsageService, api.adminToken);
      for (const format of [UsageExportFormat.UNSPECIFIED, UsageExportFormat.NDJSON]) {
        const request = {
          includeDescendants: true,
          startTime: timestampFromDate(new Date(T0)),
          endTime: timestampFromDate(new Date(T1)),
          groupBy: UsageGrouping.DEVICE,
          bucket: UsageBucket.HOUR,
          timeZone: '+05:30',
          format,
        };
        const whole = await collect(client.exportUsage(request));
        assert.ok(whole.length >= 3, `several chunks (${whole.length})`);
        for (const c of whole) assert.ok(Buffer.byteLength(c.text) <= 64 * 1024);
        const first = await collect(client.exportUsage(request), 2);
        const last = first[first.length - 1];
        assert.ok(last);
        const rest = await collect(client.exportUsage({ ...request, resumeCursor: last.cursor }));
        const joined = [...first, ...rest].map((c) => c.text).join('');
        assert.equal(joined, whole.map((c) => c.text).join(''));
        const lines = joined.trim().split('\n');
        if (format === UsageExportFormat.NDJSON) {
          const rows = lines.map((l) => JSON.parse(l) as { deviceSeconds?: string });
          const sum = rows.reduce((s, r) => s + BigInt(r.deviceSeconds ?? '0'), 0n);
          const expected = raw
            .filter((s) => isRunningState(s.state))
            .reduce((s, r) => s + BigInt(Math.floor((r.end - r.start) / 1000)), 0n);
          assert.equal(sum, expected, 'the export adds up to the raw samples');
        } else {
          assert.match(lines[0] ?? '', /^tenant_id,device_id,start_time,end_time,device_minutes,/);
          assert.equal(lines.filter((l) => l.startsWith('tenant_id,')).length, 1, 'one header');
        }
      }
    });

    test('retention drops old raw partitions; queries over the rollups still answer, resends stay deduplicated', async () => {
      const october = {
        tenants: [PLATFORM, ...tree.keys()],
        start: T0,
        end: Date.UTC(2026, 10, 1),
        zone: '+05:30',
        unit: 'day' as const,
        groupBy: 'tenant' as const,
      };
      const query = () =>
        usageTotals(store.db, {
          tenantIds: october.tenants,
          start: new Date(october.start),
          end: new Date(october.end),
          groupBy: 'tenant',
          bucket: 'day',
          timeZone: '+05:30',
        });
      const before = fromRows(await query(), '+05:30', 'day', 'tenant');
      assert.deepEqual(
        await dropExpiredUsagePartitions(store.db, {
          now: new Date(Date.UTC(2027, 11, 15)),
          retentionMonths: 13,
        }),
        ['usage_sample_p202610'],
      );
      assert.deepEqual(
        (await usagePartitions(store.db)).map((p) => p.name),
        ['usage_sample_p202611'],
      );
      const left = await sql<{
        n: number;
      }>`select count(*)::int as n from usage_sample where start_time < ${new Date(october.end).toISOString()}::timestamptz`.execute(
        store.db,
      );
      assert.equal(left.rows[0]?.n, 0, 'the raw October rows are gone');
      assert.deepEqual(fromRows(await query(), '+05:30', 'day', 'tenant'), before);
      assert.deepEqual(before, naive(raw, october));
      // An agent resending old samples after the drop: still acknowledged, never counted twice.
      const host = raw[0]?.host ?? '';
      const again = await ingestUsage(
        store.db,
        host,
        [
          create(agentv1.UsageSampleSchema, {
            sequence: 1n,
            deviceId: raw[0]?.device ?? '',
            startTime: timestampFromDate(new Date(T0)),
            endTime: timestampFromDate(new Date(T0 + MIN)),
            state: DeviceState.RUNNING,
          }),
        ],
        NOW,
      );
      assert.equal(again.inserted, 0);
      assert.deepEqual(fromRows(await query(), '+05:30', 'day', 'tenant'), before);
    });
  });
}

test('the migration keeps stored samples, their exactly-once state, and rolls them up', async () => {
  const t = await createTestDatabase<Database>();
  try {
    await migrateTo(t.db, '2026-12-03T0100-adb-tunnels');
    const host = await enrollTestHost(t.db);
    const { deviceId, tenantId } = await insertTestDevice(t.db, {
      hostId: host.hostId,
      placedAt: new Date(T0 - DAY),
    });
    const row = (sequence: number, start: number) => ({
      host_id: host.hostId,
      sequence,
      device_id: deviceId,
      tenant_id: tenantId,
      start_time: new Date(start),
      end_time: new Date(start + MIN),
      vcpu_millicores: 2000,
      memory_mib: 4096,
      storage_gib: 16,
      state: 'running',
    });
    // 1, 2 and 4 stored (a gap at 3), in two months.
    await t.db
      .insertInto('usage_sample')
      .values([row(1, T0), row(2, T0 + DAY * 5), row(4, T0 + DAY * 6)])
      .execute();
    await t.db.insertInto('usage_cursor').values({ host_id: host.hostId, acked_sequence: 2 }).execute();
    await migrateToLatest(t.db);
    const rows = await usageTotals(t.db, { tenantIds: [tenantId], start: new Date(T0), end: new Date(T1) });
    assert.equal(rows[0]?.runningSeconds, 180n);
    assert.equal(rows[0]?.vcpuMillicoreSeconds, 360_000n);
    const resent = await ingestUsage(
      t.db,
      host.hostId,
      [1, 2, 3, 4].map((n) =>
        create(agentv1.UsageSampleSchema, {
          sequence: BigInt(n),
          deviceId,
          tenantId,
          startTime: timestampFromDate(new Date(T0 + n * MIN)),
          endTime: timestampFromDate(new Date(T0 + (n + 1) * MIN)),
          vcpuMillicores: 2000,
          memoryMib: 4096,
          storageGib: 16,
          state: DeviceState.RUNNING,
        }),
      ),
      NOW,
    );
    assert.deepEqual(
      [resent.inserted, resent.duplicates, resent.ackedSequence],
      [1, 3, 4],
      'only the gap is new',
    );
  } finally {
    await t.close();
  }
});
