// The reseller example (examples/reseller.ts) end to end, with only the public API on the reseller's
// side: a real control plane and a real agent with virtual phones. The example creates a customer,
// sets its quota and retail prices, hears its phone's events on a signed webhook, and reads the
// month's closed statement, whose total it recomputes from the exported usage.
//
// Time: a price book starts at the next quarter hour (never in the past), and a statement closes
// only once its month is over. The control plane's clock is moved forward for both; the usage of the
// priced quarter hour is taken in through the intake the agent gateway uses, as the host's own
// report (the agent's own samples carry the wall clock, which the moved clock has left behind).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { ingestUsage } from '@cphone/control-plane/testing';
import {
  ApiKeyService,
  agentv1,
  BillingDimension,
  BillingService,
  PriceBookKind,
  Role,
  WebhookEventType,
} from '@cphone/proto';
import {
  closedStatement,
  connect,
  createCustomer,
  createPhone,
  recompute,
  setQuota,
  setRetailPrices,
  subscribe,
  WebhookReceiver,
} from '../../examples/reseller.js';
import { type Harness, startHarness } from './harness.js';

const DAY = 86_400_000;
let h: Harness;
// The receiver judges signature times by the control plane's clock, which the test moves.
const receiver = new WebhookReceiver(() => h.clock.now());

before(async () => {
  h = await startHarness({
    heartbeatTtlMs: 60 * DAY,
    lostGraceMs: 60 * DAY,
    webhookAllowHosts: ['127.0.0.1'],
  });
  await h.startAgent();
});

after(async () => {
  await receiver.close();
  await h?.close();
});

test('a reseller creates a customer, prices it, hears its phone, and recomputes its closed statement from the usage export', async (t) => {
  // The operator's part: the reseller's wholesale book and an admin key for the reseller.
  const quarter = 15 * 60_000;
  const nextQuarter = Math.floor(h.clock.now().getTime() / quarter) * quarter + quarter;
  await h.client(BillingService).createPriceBook({
    requestId: 'wholesale-e2e',
    priceBook: {
      tenantId: h.tenantId,
      kind: PriceBookKind.WHOLESALE,
      currency: 'EUR',
      effectiveFrom: timestampFromDate(new Date(nextQuarter)),
      prices: [{ dimension: BillingDimension.DEVICE_MINUTES, tiers: [{ upTo: 0n, unitPrice: '0.005' }] }],
    },
  });
  const key = await h.client(ApiKeyService).createApiKey({
    tenantId: h.tenantId,
    role: Role.TENANT_ADMIN,
    displayName: 'reseller integration',
  });
  const api = connect(h.plane.httpUrl, key.secret);

  // The reseller's part, as examples/reseller.ts runs it.
  const customerId = await createCustomer(api, 'Acme Mobile QA');
  const quota = await setQuota(api, customerId);
  assert.equal(quota?.maxDeviceMinutes, 10_000n);
  const book = await setRetailPrices(api, customerId, h.clock.now());
  assert.equal(book.currency, 'EUR', 'the retail book takes the wholesale currency');
  const webhook = await subscribe(api, customerId, receiver, await receiver.listen());
  assert.ok(webhook?.webhookId);
  const phone = await createPhone(api, customerId, receiver, h.imageId);
  assert.equal(phone.created.tenantId, customerId);
  assert.equal(phone.running.device?.deviceId, phone.deviceId);
  assert.deepEqual(receiver.rejected, [], 'every delivery carried a valid signature');

  // Five priced minutes of the phone, reported by its host once the book is in force.
  const from = timestampDate(book.effectiveFrom ?? timestampFromDate(new Date()));
  h.clock.set(new Date(from.getTime() + 10 * 60_000));
  const samples = Array.from({ length: 5 }, (_, i) =>
    create(agentv1.UsageSampleSchema, {
      sequence: 1_000_000_000n + BigInt(i),
      deviceId: phone.deviceId,
      tenantId: customerId,
      startTime: timestampFromDate(new Date(from.getTime() + i * 60_000)),
      endTime: timestampFromDate(new Date(from.getTime() + (i + 1) * 60_000)),
      vcpuMillicores: 1000,
      memoryMib: 1024,
      storageGib: 4,
      state: agentv1.DeviceState.RUNNING,
    }),
  );
  const intake = await ingestUsage(h.plane.deps.db, h.hostId, samples, h.clock.now());
  assert.equal(intake.inserted, 5, JSON.stringify(intake));

  // The month ends; the reseller closes (or reads) the customer's statement and checks it.
  const month = from.toISOString().slice(0, 7);
  const [y, m] = month.split('-').map(Number) as [number, number];
  h.clock.set(new Date(Date.UTC(y, m, 1, 7)));
  const statement = await closedStatement(api, customerId, month);
  const mine = await recompute(api, customerId, book, month);
  assert.ok(mine.deviceSeconds >= 300n, `at least the reported 300 s: ${mine.deviceSeconds}`);
  assert.equal(statement.rating?.currency, 'EUR');
  assert.equal(
    statement.rating?.total,
    mine.total,
    JSON.stringify({ lines: statement.rating?.lines, mine }, (_, v) =>
      typeof v === 'bigint' ? String(v) : v,
    ),
  );
  assert.ok(Number(mine.total) >= 0.1, `5 minutes at 0.02 at least: ${mine.total}`);
  t.diagnostic(
    `statement ${month}: ${statement.rating?.lines.map((l) => `${BillingDimension[l.dimension]} ${l.quantity} x ${l.unitPrice} = ${l.amount}`).join('; ')}; total ${statement.rating?.total} ${statement.rating?.currency}`,
  );
  t.diagnostic(
    `recomputed from ${mine.rows} exported rows: ${JSON.stringify(mine.lines)}, total ${mine.total}`,
  );
  const again = await closedStatement(api, customerId, month);
  assert.equal(again.statementId, statement.statementId, 'a closed statement stays what it was');
  const closed = await receiver.next(
    (e) => e.type === WebhookEventType.STATEMENT_CLOSED && e.statement?.statementId === statement.statementId,
  );
  assert.equal(closed.statement?.totalAmount, statement.rating?.total);
});
