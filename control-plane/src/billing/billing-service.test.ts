import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code } from '@connectrpc/connect';
import { BillingDimension, BillingService, ChargeKind, type PriceBookSchema } from '@cphone/proto';
import { sql } from 'kysely';
import pino from 'pino';
import { connectError, startTestApi, type TestApi } from '../api/test-api.js';
import { ManualClock } from '../clock.js';
import { insertTestDevice } from '../gateway/testing.js';
import type { Database } from '../store/schema.js';
import { createTestStore, type TestDatabase } from '../testing.js';
import { billingService } from './billing-service.js';
import { StatementCloser } from './closer.js';
import { insertSamples } from './test-usage.js';

let store: TestDatabase<Database>;
let api: TestApi;
const clock = new ManualClock({ start: new Date('2026-10-01T00:00:00Z') });
const tokens: Record<string, string> = {};
const at = (iso: string) => timestampFromDate(new Date(iso));
const D = BillingDimension;

before(async () => {
  store = await createTestStore();
  api = await startTestApi({
    db: store.db,
    clock,
    routes: (router, deps) => router.service(BillingService, billingService(deps)),
  });
  await api.tenant('r1', 'reseller', 'platform');
  await api.tenant('r2', 'reseller', 'platform');
  await api.tenant('c1', 'customer', 'r1');
  await api.tenant('c3', 'customer', 'r1');
  await api.tenant('c2', 'customer', 'r2');
  for (const t of ['r1', 'r2', 'c1', 'c2']) tokens[t] = await api.token(t, 'tenant_admin');
});

after(async () => {
  await api?.close();
  await store?.close();
});

const flat = (dimension: BillingDimension, unitPrice: string, deviceClass = '') => ({
  dimension,
  deviceClass,
  tiers: [{ upTo: 0n, unitPrice }],
});

function book(tenantId: string, effective: string, extra: MessageInitShape<typeof PriceBookSchema> = {}) {
  return {
    priceBook: {
      tenantId,
      currency: 'USD',
      effectiveFrom: at(effective),
      prices: [flat(D.DEVICE_MINUTES, '0.005')],
      ...extra,
    },
  };
}

/** Books of r1 (wholesale) and c1 (retail, changed on the 16th), and a month of c1's usage. */
async function seedOctober() {
  const platform = api.client(BillingService, api.adminToken);
  const r1 = api.client(BillingService, tokens.r1);
  await platform.createPriceBook(book('r1', '2026-10-01T00:00:00Z'));
  const first = await r1.createPriceBook({
    requestId: 'c1-october',
    ...book('c1', '2026-10-01T00:00:00Z', {
      displayName: 'October',
      minimumCharge: '50.00',
      prices: [
        {
          dimension: D.DEVICE_MINUTES,
          includedQuantity: 100n,
          tiers: [
            { upTo: 1000n, unitPrice: '0.01' },
            { upTo: 0n, unitPrice: '0.008' },
          ],
        },
        flat(D.DEVICE_MINUTES, '0.05', 'gpu'),
        flat(D.VCPU_MINUTES, '0.0005'),
      ],
    }),
  });
  const again = await r1.createPriceBook({
    requestId: 'c1-october',
    ...book('c1', '2026-10-01T00:00:00Z', {
      displayName: 'October',
      minimumCharge: '50.00',
      prices: first.priceBook?.prices ?? [],
    }),
  });
  assert.equal(again.priceBook?.priceBookId, first.priceBook?.priceBookId, 'a retry returns the same book');
  await r1.createPriceBook(
    book('c1', '2026-10-16T00:00:00Z', {
      displayName: 'From the 16th',
      minimumCharge: '30',
      prices: [
        {
          dimension: D.DEVICE_MINUTES,
          includedQuantity: 100n,
          tiers: [
            { upTo: 1000n, unitPrice: '0.02' },
            { upTo: 0n, unitPrice: '0.015' },
          ],
        },
        flat(D.VCPU_MINUTES, '0.0005'),
      ],
    }),
  );
  const d1 = (
    await insertTestDevice(store.db, {
      hostId: null,
      tenantId: 'c1',
      state: 'running',
      desiredPower: 'running',
      vcpuMillicores: 2000,
      memoryMib: 4096,
      storageGib: 8,
    })
  ).deviceId;
  const d2 = (
    await insertTestDevice(store.db, {
      hostId: null,
      tenantId: 'c1',
      state: 'running',
      desiredPower: 'running',
      vcpuMillicores: 1000,
      memoryMib: 2048,
      storageGib: 8,
    })
  ).deviceId;
  await store.db
    .updateTable('device')
    .set({ labels: JSON.stringify({ class: 'gpu' }) })
    .where('id', '=', d2)
    .execute();
  await insertSamples(store.db, [
    {
      deviceId: d1,
      tenantId: 'c1',
      start: new Date('2026-10-01T00:00:00Z'),
      minutes: 700,
      vcpuMillicores: 2000,
    },
    {
      deviceId: d2,
      tenantId: 'c1',
      start: new Date('2026-10-12T00:00:00Z'),
      minutes: 100,
      vcpuMillicores: 1000,
    },
    {
      deviceId: d2,
      tenantId: 'c1',
      start: new Date('2026-10-13T00:00:00Z'),
      minutes: 30,
      state: 'stopped',
      vcpuMillicores: 1000,
    },
    {
      deviceId: d1,
      tenantId: 'c1',
      start: new Date('2026-10-17T00:00:00Z'),
      minutes: 800,
      vcpuMillicores: 2000,
    },
    {
      deviceId: d2,
      tenantId: 'c1',
      start: new Date('2026-10-25T00:00:00Z'),
      minutes: 50,
      vcpuMillicores: 1000,
    },
    // Another reseller's customer: never on r1's statements.
    { deviceId: d1, tenantId: 'c2', start: new Date('2026-10-05T00:00:00Z'), minutes: 10 },
  ]);
}

test('bad price books are refused with the field and the value', async () => {
  const r1 = api.client(BillingService, tokens.r1);
  await assert.rejects(
    r1.createPriceBook(book('c1', '2026-10-01T00:00:00Z', { prices: [flat(D.DEVICE_MINUTES, '-0.01')] })),
    connectError(Code.InvalidArgument, /unit_price "-0\.01": must not be negative/),
  );
  await assert.rejects(
    r1.createPriceBook(book('c1', '2026-10-01T00:00:00Z', { currency: 'XYZ' })),
    connectError(Code.InvalidArgument, /currency "XYZ"/),
  );
  await assert.rejects(
    r1.createPriceBook(book('c1', '2026-10-01T00:00:00Z', { minimumCharge: '-5' })),
    connectError(Code.InvalidArgument, /minimum_charge "-5": must not be negative/),
  );
  await assert.rejects(
    r1.createPriceBook(book('c1', '2026-10-01T00:10:00Z')),
    connectError(
      Code.InvalidArgument,
      /effective_from "2026-10-01T00:10:00.000Z": must be a multiple of 15 minutes/,
    ),
  );
  await assert.rejects(
    r1.createPriceBook(book('c1', '2026-09-30T00:00:00Z')),
    connectError(Code.InvalidArgument, /effective_from .* never rewrites the past/),
  );
  await assert.rejects(
    r1.createPriceBook(
      book('c1', '2026-10-01T00:00:00Z', {
        prices: [{ dimension: D.DEVICE_MINUTES, tiers: [{ upTo: 10n, unitPrice: '1' }] }],
      }),
    ),
    connectError(Code.InvalidArgument, /up_to.*unbounded/),
  );
  await assert.rejects(
    api.client(BillingService, tokens.c1).createPriceBook(book('c1', '2026-10-01T00:00:00Z')),
    connectError(Code.PermissionDenied, /ancestor/),
  );
  await assert.rejects(
    r1.createPriceBook(book('c2', '2026-10-01T00:00:00Z')),
    connectError(Code.NotFound, /c2/),
  );
});

test('a month with a mid-month price change closes into a statement that adds up to the cent', async () => {
  await seedOctober();
  const r1 = api.client(BillingService, tokens.r1);
  await assert.rejects(
    r1.createPriceBook(book('c1', '2026-10-16T00:00:00Z')),
    connectError(Code.FailedPrecondition, /2026-10-16T00:00:00\.000Z/),
  );
  await assert.rejects(
    r1.createPriceBook(book('c1', '2026-10-20T00:00:00Z', { currency: 'EUR' })),
    connectError(Code.FailedPrecondition, /currency "EUR" differs from "USD"/),
  );
  await assert.rejects(
    r1.closeStatement({ tenantId: 'c1', month: '2026-10' }),
    connectError(Code.FailedPrecondition, /month 2026-10 is not over/),
  );
  await assert.rejects(
    r1.getStatement({ tenantId: 'c1', month: '2026-10' }),
    connectError(Code.FailedPrecondition, /not over/),
  );

  clock.set(new Date('2026-10-21T00:00:00Z'));
  // Oct 10..20: the 700 minutes of Oct 1 count toward the month (100 free, 600 billable) but are
  // not shown. gpu 100 x 0.05 = 5.00, its vCPU 100 x 0.0005 = 0.05; from the 16th 400 x 0.02 = 8.00
  // (to billable unit 1000), 400 x 0.015 = 6.00, vCPU 1600 x 0.0005 = 0.80. No minimum (partial month).
  const partial = await r1.rateUsage({
    tenantId: 'c1',
    startTime: at('2026-10-10T00:00:00Z'),
    endTime: at('2026-10-20T00:00:00Z'),
  });
  assert.deepEqual(
    partial.rating?.lines.map((l) => [l.startTime?.seconds, l.deviceClass, l.tier, l.quantity, l.amount]),
    [
      [at('2026-10-10T00:00:00Z').seconds, 'gpu', 1, '100', '5.00'],
      [at('2026-10-10T00:00:00Z').seconds, '', 1, '100', '0.05'],
      [at('2026-10-16T00:00:00Z').seconds, '', 1, '400', '8.00'],
      [at('2026-10-16T00:00:00Z').seconds, '', 2, '400', '6.00'],
      [at('2026-10-16T00:00:00Z').seconds, '', 1, '1600', '0.80'],
    ],
  );
  assert.equal(partial.rating?.total, '19.85');

  clock.set(new Date('2026-11-01T00:00:00Z'));
  // The reseller listens for its customers' statements (a subscription row; delivery is the
  // webhooks' own test): closing writes the event in the statement's transaction.
  await store.db
    .insertInto('webhook')
    .values({
      id: 'wh_statements',
      tenant_id: 'r1',
      display_name: 'statements',
      url: 'https://billing.example.invalid/hook',
      event_types: JSON.stringify(['statement_closed']),
      secret: 'sealed',
      create_time: clock.now(),
      update_time: clock.now(),
    })
    .execute();
  const closed = await r1.closeStatement({ tenantId: 'c1', month: '2026-10' });
  const s = closed.statement;
  // Oct 1-15 (book 1): 700 plain minutes, 100 free, 600 x 0.01 = 6.00; gpu 100 x 0.05 = 5.00; vCPU
  // (1400 + 100) x 0.0005 = 0.75. Oct 16-31 (book 2, no gpu price: gpu minutes at the plain one):
  // 850 minutes, allowance used, billable 601..1000 x 0.02 = 8.00, 450 x 0.015 = 6.75; vCPU 1650 x
  // 0.0005 = 0.825, a tie, rounded half to even to 0.82. Sum 27.32 < minimum 30.00 -> 2.68.
  assert.deepEqual(
    s?.rating?.lines.map((l) => [
      ChargeKind[l.kind],
      D[l.dimension],
      l.deviceClass,
      l.tier,
      l.quantity,
      l.unitPrice,
      l.amount,
    ]),
    [
      ['INCLUDED', 'DEVICE_MINUTES', '', 0, '100', '0', '0.00'],
      ['USAGE', 'DEVICE_MINUTES', '', 1, '600', '0.01', '6.00'],
      ['USAGE', 'DEVICE_MINUTES', 'gpu', 1, '100', '0.05', '5.00'],
      ['USAGE', 'VCPU_MINUTES', '', 1, '1500', '0.0005', '0.75'],
      ['USAGE', 'DEVICE_MINUTES', '', 1, '400', '0.02', '8.00'],
      ['USAGE', 'DEVICE_MINUTES', '', 2, '450', '0.015', '6.75'],
      ['USAGE', 'VCPU_MINUTES', '', 1, '1650', '0.0005', '0.82'],
      ['MINIMUM', 'UNSPECIFIED', '', 0, '1', '2.68', '2.68'],
    ],
  );
  assert.equal(s?.rating?.total, '30.00');
  assert.equal(s?.rating?.currency, 'USD');
  assert.equal(s?.month, '2026-10');

  const again = await r1.closeStatement({ tenantId: 'c1', month: '2026-10' });
  assert.equal(again.statement?.statementId, s?.statementId, 'closing twice returns the same statement');
  const events = await store.db
    .selectFrom('webhook_event')
    .select(['tenant_id', 'type', 'body'])
    .where('type', '=', 'statement_closed')
    .execute();
  assert.deepEqual(
    events.map((e) => [e.tenant_id, JSON.parse(e.body).statement]),
    [
      [
        'c1',
        {
          tenantId: 'c1',
          month: '2026-10',
          statementId: s?.statementId,
          totalAmount: '30.00',
          currency: 'USD',
        },
      ],
    ],
    'one STATEMENT_CLOSED event, not one per close',
  );
  const read = await api.client(BillingService, tokens.c1).getStatement({ month: '2026-10' });
  assert.equal(read.statement?.rating?.total, '30.00');

  // The reseller: wholesale 1650 running minutes x 0.005 = 8.25; c1 pays 30.00; c3 has no book.
  const reseller = await api
    .client(BillingService, api.adminToken)
    .closeStatement({ tenantId: 'r1', month: '2026-10' });
  const rs = reseller.statement?.rating;
  assert.equal(rs?.total, '8.25');
  assert.deepEqual(
    rs?.customers.map((c) => [c.tenantId, c.priced, c.total, c.statementId]),
    [
      ['c1', true, '30.00', s?.statementId],
      ['c3', false, '0.00', ''],
    ],
  );
  assert.equal(rs?.customersTotal, '30.00');
  assert.equal(rs?.margin, '21.75');
  const live = await r1.rateUsage({
    startTime: at('2026-10-01T00:00:00Z'),
    endTime: at('2026-11-01T00:00:00Z'),
    includeCustomers: true,
  });
  assert.deepEqual(
    [live.rating?.total, live.rating?.customersTotal, live.rating?.margin],
    ['8.25', '30.00', '21.75'],
  );

  const listed = await r1.listStatements({ tenantId: 'c1' });
  assert.deepEqual(
    listed.statements.map((x) => x.month),
    ['2026-10'],
  );
  await assert.rejects(
    r1.getStatement({ tenantId: 'c1', month: '2026-09' }),
    connectError(Code.NotFound, /not closed yet/),
  );
  await assert.rejects(
    r1.closeStatement({ tenantId: 'c1', month: '2026-11' }),
    connectError(Code.FailedPrecondition, /month 2026-11 is not over/),
  );
  await assert.rejects(
    r1.closeStatement({ tenantId: 'c3', month: '2026-10' }),
    connectError(Code.FailedPrecondition, /no price book in force in 2026-10/),
  );
  await assert.rejects(
    sql`update statement set total = '0.00' where id = ${s?.statementId ?? ''}`.execute(store.db),
    /immutable/,
  );
  await assert.rejects(sql`delete from price_book`.execute(store.db), /immutable/);
});

test('the CSV export has a header, one record per line, and a total the lines add up to', async () => {
  const chunks: Uint8Array[] = [];
  for await (const m of api
    .client(BillingService, tokens.r1)
    .exportStatement({ tenantId: 'c1', month: '2026-10' })) {
    chunks.push(m.csvChunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  assert.ok(text.endsWith('\r\n'));
  const records = text
    .trimEnd()
    .split('\r\n')
    .map((r) => r.split(','));
  assert.deepEqual(records[0]?.slice(0, 5), ['record', 'tenant_id', 'month', 'currency', 'kind']);
  const lines = records.filter((r) => r[0] === 'line');
  assert.equal(lines.length, 8);
  const cents = lines.reduce((sum, r) => sum + Math.round(Number(r[14]) * 100), 0);
  const total = records.find((r) => r[0] === 'total');
  assert.equal(total?.[14], '30.00');
  assert.equal(cents, 3000);

  const resellerCsv: Uint8Array[] = [];
  for await (const m of api
    .client(BillingService, api.adminToken)
    .exportStatement({ tenantId: 'r1', month: '2026-10' })) {
    resellerCsv.push(m.csvChunk);
  }
  const tail = Buffer.concat(resellerCsv).toString('utf8').trimEnd().split('\r\n').slice(-4);
  assert.deepEqual(
    tail.map((r) => [r.split(',')[0], r.split(',')[1], r.split(',')[5], r.split(',')[14]]),
    [
      ['customer', 'c1', '', '30.00'],
      ['customer', 'c3', 'not priced', '0.00'],
      ['customers_total', 'r1', '', '30.00'],
      ['margin', 'r1', '', '21.75'],
    ],
  );
});

test("a reseller sees nothing of a sibling reseller's books, ratings or statements", async () => {
  const r1 = api.client(BillingService, tokens.r1);
  const r2 = api.client(BillingService, tokens.r2);
  const books = await r1.listPriceBooks({ tenantId: 'c1' });
  assert.deepEqual(
    books.priceBooks.map((b) => b.effectiveFrom?.seconds),
    [at('2026-10-16T00:00:00Z').seconds, at('2026-10-01T00:00:00Z').seconds],
  );
  const page = await r1.listPriceBooks({ tenantId: 'c1', pageSize: 1 });
  const next = await r1.listPriceBooks({ tenantId: 'c1', pageSize: 1, pageToken: page.nextPageToken });
  assert.equal(next.priceBooks[0]?.displayName, 'October');
  const wholesale = (await r1.listPriceBooks({})).priceBooks[0];
  assert.equal(wholesale?.tenantId, 'r1', 'a reseller reads its own wholesale book');
  const c1Book = books.priceBooks[0]?.priceBookId ?? '';
  const statement =
    (await r1.getStatement({ tenantId: 'c1', month: '2026-10' })).statement?.statementId ?? '';
  await assert.rejects(r2.getPriceBook({ priceBookId: c1Book }), connectError(Code.NotFound));
  await assert.rejects(r2.listPriceBooks({ tenantId: 'r1' }), connectError(Code.NotFound));
  await assert.rejects(r2.listPriceBooks({ tenantId: 'c1' }), connectError(Code.NotFound));
  await assert.rejects(
    r2.rateUsage({
      tenantId: 'c1',
      startTime: at('2026-10-01T00:00:00Z'),
      endTime: at('2026-11-01T00:00:00Z'),
    }),
    connectError(Code.NotFound),
  );
  await assert.rejects(r2.getStatement({ statementId: statement }), connectError(Code.NotFound));
  await assert.rejects(r2.getStatement({ tenantId: 'r1', month: '2026-10' }), connectError(Code.NotFound));
  await assert.rejects(r2.closeStatement({ tenantId: 'c1', month: '2026-10' }), connectError(Code.NotFound));
  const iter = r2.exportStatement({ statementId: statement });
  await assert.rejects(
    (async () => {
      for await (const _ of iter) break;
    })(),
    connectError(Code.NotFound),
  );
  // A customer does not see its reseller's wholesale book.
  const c1 = api.client(BillingService, tokens.c1);
  await assert.rejects(
    c1.getPriceBook({ priceBookId: wholesale?.priceBookId ?? '' }),
    connectError(Code.NotFound),
  );
  await assert.rejects(c1.listPriceBooks({ tenantId: 'r1' }), connectError(Code.NotFound));
});

test("the closer closes last month's statements on the leader once the grace is over", async () => {
  const platform = api.client(BillingService, api.adminToken);
  await platform.createPriceBook(
    book('r2', '2026-11-01T00:00:00Z', { prices: [flat(D.DEVICE_MINUTES, '0.01')] }),
  );
  let leading = false;
  const closer = new StatementCloser({
    db: store.db,
    clock,
    logger: pino({ level: 'silent' }),
    isLeader: () => leading,
    graceMs: 3_600_000,
  });
  clock.set(new Date('2026-12-01T00:30:00Z'));
  assert.equal(await closer.pass(), 0, 'a follower closes nothing');
  leading = true;
  assert.equal(await closer.pass(), 0, 'not before the grace is over');
  clock.set(new Date('2026-12-01T01:00:00Z'));
  // November: c1 (its October books go on) and r1, and r2 from its new book. c2's usage is October's.
  assert.equal(await closer.pass(), 3);
  const r2 = await api.client(BillingService, tokens.r2).getStatement({ tenantId: 'r2', month: '2026-11' });
  assert.equal(r2.statement?.rating?.total, '0.00');
  assert.deepEqual(
    r2.statement?.rating?.customers.map((c) => [c.tenantId, c.priced]),
    [['c2', false]],
  );
  const c1 = await api.client(BillingService, tokens.c1).getStatement({ month: '2026-11' });
  assert.equal(c1.statement?.rating?.total, '30.00', 'a month without usage pays the minimum');
  assert.equal(await closer.pass(), 0);
  await closer.close();
});
