// A reseller's integration, with only the public Connect API: create a customer, set its quota and
// retail prices, hear its phones' events on a signed webhook, and read a closed monthly statement
// whose total is recomputed here from the exported usage.
//
//   CPHONE_API_KEY=<a reseller admin's key> npx tsx examples/reseller.ts [--month YYYY-MM]
//
// CPHONE_API_URL defaults to the embedded platform (http://127.0.0.1:8080). The webhook receiver
// listens on 127.0.0.1 (the embedded platform allows loopback targets; a production platform only
// delivers to public HTTPS addresses). The steps are exported for the end-to-end test that runs
// them (tests/e2e/reseller-example.test.ts).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { fromJsonString } from '@bufbuild/protobuf';
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { type Client, createClient, type Transport } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import {
  BillingDimension,
  BillingService,
  DeviceService,
  ImageService,
  PowerState,
  type PriceBook,
  PriceBookKind,
  type Statement,
  TenantKind,
  TenantService,
  UsageBucket,
  UsageExportFormat,
  UsageGrouping,
  UsageService,
  type WebhookEvent,
  WebhookEventSchema,
  WebhookEventType,
  WebhookService,
} from '@cphone/proto/api';

export interface Reseller {
  readonly tenants: Client<typeof TenantService>;
  readonly devices: Client<typeof DeviceService>;
  readonly images: Client<typeof ImageService>;
  readonly billing: Client<typeof BillingService>;
  readonly usage: Client<typeof UsageService>;
  readonly webhooks: Client<typeof WebhookService>;
}

export function connect(baseUrl: string, apiKey: string): Reseller {
  const transport: Transport = createConnectTransport({
    baseUrl,
    httpVersion: '1.1',
    interceptors: [
      (next) => (req) => {
        req.header.set('authorization', `Bearer ${apiKey}`);
        return next(req);
      },
    ],
  });
  return {
    tenants: createClient(TenantService, transport),
    devices: createClient(DeviceService, transport),
    images: createClient(ImageService, transport),
    billing: createClient(BillingService, transport),
    usage: createClient(UsageService, transport),
    webhooks: createClient(WebhookService, transport),
  };
}

/** Step 1: a customer under the caller's reseller tenant (idempotent by display name is the caller's job). */
export async function createCustomer(api: Reseller, name: string): Promise<string> {
  const { tenant } = await api.tenants.createTenant({
    kind: TenantKind.CUSTOMER,
    displayName: name,
    labels: { 'crm-id': name.toLowerCase().replaceAll(/[^a-z0-9]+/g, '-') },
  });
  return tenant?.tenantId ?? '';
}

/** Step 2: its quota: at most 5 phones, 2 running, 10,000 device minutes a month (starts refused after). */
export async function setQuota(api: Reseller, customerId: string) {
  const { quota } = await api.tenants.setQuota({
    quota: { tenantId: customerId, maxDevices: 5, maxRunningDevices: 2, maxDeviceMinutes: 10_000n },
  });
  return quota;
}

/** The retail prices of this example: flat per-minute prices, no allowance, no minimum. */
export const RETAIL = {
  deviceMinute: '0.02',
  vcpuMinute: '0.001',
} as const;

/**
 * Step 3: the customer's retail price book, from the next quarter hour (a price never changes the
 * past; usage is metered in quarter hours), in the currency of the reseller's wholesale book.
 */
export async function setRetailPrices(
  api: Reseller,
  customerId: string,
  now = new Date(),
): Promise<PriceBook> {
  const own = await api.billing.listPriceBooks({});
  const currency = own.priceBooks.find((b) => b.kind === PriceBookKind.WHOLESALE)?.currency ?? 'USD';
  const quarter = 15 * 60_000;
  const from = new Date(Math.floor(now.getTime() / quarter) * quarter + quarter);
  const { priceBook } = await api.billing.createPriceBook({
    requestId: `retail-${customerId}-${from.toISOString()}`,
    priceBook: {
      tenantId: customerId,
      kind: PriceBookKind.RETAIL,
      displayName: 'standard retail',
      currency,
      effectiveFrom: timestampFromDate(from),
      prices: [
        { dimension: BillingDimension.DEVICE_MINUTES, tiers: [{ upTo: 0n, unitPrice: RETAIL.deviceMinute }] },
        { dimension: BillingDimension.VCPU_MINUTES, tiers: [{ upTo: 0n, unitPrice: RETAIL.vcpuMinute }] },
      ],
    },
  });
  if (!priceBook) throw new Error('CreatePriceBook answered no book');
  return priceBook;
}

/** A webhook receiver that checks every delivery's Standard Webhooks signature before keeping it. */
export class WebhookReceiver {
  readonly events: WebhookEvent[] = [];
  readonly rejected: string[] = [];
  readonly #server: Server;
  #secrets: string[] = [];
  #waiters: (() => void)[] = [];

  /** `now` is the receiver's clock: a delivery signed more than 5 minutes from it is refused. */
  constructor(private readonly now: () => Date = () => new Date()) {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (!this.#verify(req.headers, body)) {
          this.rejected.push(String(req.headers['webhook-id'] ?? ''));
          res.writeHead(401).end();
          return;
        }
        const event = fromJsonString(WebhookEventSchema, body);
        // At least once: the same event id may come again; keep it once.
        if (!this.events.some((e) => e.eventId === event.eventId)) this.events.push(event);
        res.writeHead(204).end();
        for (const wake of this.#waiters.splice(0)) wake();
      });
    });
  }

  async listen(host = '127.0.0.1'): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, host, resolve));
    return `http://${host}:${(this.#server.address() as AddressInfo).port}/cphone`;
  }

  useSecret(secret: string): void {
    this.#secrets = [secret];
  }

  /** Resolves with the first event (in arrival order) that matches, waiting for it. */
  async next(match: (e: WebhookEvent) => boolean, timeoutMs = 60_000): Promise<WebhookEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find(match);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no matching webhook event arrived in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  /** Standard Webhooks: base64 HMAC-SHA256 of "<id>.<timestamp>.<body>", key = base64 after "whsec_". */
  #verify(headers: Record<string, string | string[] | undefined>, body: string): boolean {
    const id = String(headers['webhook-id'] ?? '');
    const timestamp = String(headers['webhook-timestamp'] ?? '');
    if (!id || Math.abs(this.now().getTime() / 1000 - Number(timestamp)) > 300) return false;
    const given = String(headers['webhook-signature'] ?? '')
      .split(' ')
      .filter((s) => s.startsWith('v1,'))
      .map((s) => Buffer.from(s.slice(3), 'base64'));
    return this.#secrets.some((secret) => {
      const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
      const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest();
      return given.some((g) => g.length === expected.length && timingSafeEqual(g, expected));
    });
  }
}

/** Step 4: a webhook for the customer's events; the receiver learns the secret shown once. */
export async function subscribe(api: Reseller, customerId: string, receiver: WebhookReceiver, url: string) {
  const made = await api.webhooks.createWebhook({
    requestId: `events-${customerId}`,
    tenantId: customerId,
    displayName: 'customer events',
    url,
    eventTypes: [
      WebhookEventType.DEVICE_CREATED,
      WebhookEventType.DEVICE_RUNNING,
      WebhookEventType.DEVICE_STOPPED,
      WebhookEventType.DEVICE_DELETED,
      WebhookEventType.QUOTA_THRESHOLD_REACHED,
      WebhookEventType.STATEMENT_CLOSED,
    ],
  });
  receiver.useSecret(made.secret);
  return made.webhook;
}

/** Step 5: a phone for the customer; resolves once the webhook said it was created and runs. */
export async function createPhone(
  api: Reseller,
  customerId: string,
  receiver: WebhookReceiver,
  imageId?: string,
) {
  const image = imageId ?? (await api.images.listImages({ pageSize: 1 })).images[0]?.imageId ?? '';
  const { devices } = await api.devices.batchCreateDevices({
    tenantId: customerId,
    requestId: `first-phone-${customerId}`,
    requests: [
      { displayName: 'first phone', spec: { imageId: image }, desiredPowerState: PowerState.RUNNING },
    ],
  });
  const deviceId = devices[0]?.deviceId ?? '';
  const created = await receiver.next(
    (e) => e.type === WebhookEventType.DEVICE_CREATED && e.device?.deviceId === deviceId,
  );
  const running = await receiver.next(
    (e) => e.type === WebhookEventType.DEVICE_RUNNING && e.device?.deviceId === deviceId,
    180_000,
  );
  return { deviceId, created, running };
}

/** Step 6: the month's statement, closed (or read if the platform closed it already). */
export async function closedStatement(api: Reseller, customerId: string, month: string): Promise<Statement> {
  const { statement } = await api.billing.closeStatement({ tenantId: customerId, month });
  if (!statement) throw new Error(`no statement for ${month}`);
  return statement;
}

/** Exact decimal "12.345" -> units of 10^-9. */
function nano(decimal: string): bigint {
  const [whole = '0', fraction = ''] = decimal.split('.');
  return BigInt(whole) * 1_000_000_000n + BigInt(fraction.padEnd(9, '0').slice(0, 9));
}

/** num / den rounded half to even (the statement's rounding rule). */
function roundHalfEven(num: bigint, den: bigint): bigint {
  const q = num / den;
  const r = num % den;
  if (r * 2n > den || (r * 2n === den && q % 2n === 1n)) return q + 1n;
  return q;
}

function cents(minor: bigint): string {
  return `${minor / 100n}.${String(minor % 100n).padStart(2, '0')}`;
}

/**
 * Step 7: the statement's total recomputed from the exported usage of the priced part of the
 * month (from the book's effective time to the month's end), at the example's flat prices: each
 * line rounded half to even to the cent, the total the sum of the lines.
 */
export async function recompute(api: Reseller, customerId: string, book: PriceBook, month: string) {
  const [y, m] = month.split('-').map(Number) as [number, number];
  const monthStart = new Date(Date.UTC(y, m - 1, 1));
  const monthEnd = new Date(Date.UTC(y, m, 1));
  const from = book.effectiveFrom ? timestampDate(book.effectiveFrom) : monthStart;
  const start = from > monthStart ? from : monthStart;
  let deviceSeconds = 0n;
  let vcpuMillicoreSeconds = 0n;
  let text = '';
  for await (const chunk of api.usage.exportUsage({
    tenantId: customerId,
    includeDescendants: true,
    startTime: timestampFromDate(start),
    endTime: timestampFromDate(monthEnd),
    groupBy: UsageGrouping.DEVICE,
    bucket: UsageBucket.RANGE,
    format: UsageExportFormat.NDJSON,
  })) {
    text += Buffer.from(chunk.ndjsonChunk).toString('utf8');
  }
  const rows = text.split('\n').filter((line) => line.length > 0);
  for (const line of rows) {
    const row = JSON.parse(line) as { deviceSeconds?: string; vcpuMillicoreSeconds?: string };
    deviceSeconds += BigInt(row.deviceSeconds ?? '0');
    vcpuMillicoreSeconds += BigInt(row.vcpuMillicoreSeconds ?? '0');
  }
  // Prices are per minute (and per vCPU): seconds / 60, millicore-seconds / 60,000; minor units are cents.
  const deviceLine = roundHalfEven(deviceSeconds * nano(RETAIL.deviceMinute) * 100n, 60n * 1_000_000_000n);
  const vcpuLine = roundHalfEven(
    vcpuMillicoreSeconds * nano(RETAIL.vcpuMinute) * 100n,
    60_000n * 1_000_000_000n,
  );
  return {
    rows: rows.length,
    deviceSeconds,
    vcpuMillicoreSeconds,
    lines: { deviceMinutes: cents(deviceLine), vcpuMinutes: cents(vcpuLine) },
    total: cents(deviceLine + vcpuLine),
  };
}

function lastMonth(now = new Date()): string {
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { month: { type: 'string', default: lastMonth() } } });
  const key = process.env.CPHONE_API_KEY;
  if (!key) throw new Error('set CPHONE_API_KEY to a reseller admin key');
  const api = connect(process.env.CPHONE_API_URL ?? 'http://127.0.0.1:8080', key);
  const say = (step: string, detail: unknown) => console.log(`${step}:`, detail);

  const customerId = await createCustomer(api, `Example Customer ${new Date().toISOString().slice(0, 16)}`);
  say('1. customer', customerId);
  const quota = await setQuota(api, customerId);
  say('2. quota', { maxDevices: quota?.maxDevices, maxDeviceMinutes: quota?.maxDeviceMinutes });
  const book = await setRetailPrices(api, customerId);
  say('3. retail price book', {
    id: book.priceBookId,
    currency: book.currency,
    from: book.effectiveFrom && timestampDate(book.effectiveFrom).toISOString(),
  });
  const receiver = new WebhookReceiver();
  try {
    const webhook = await subscribe(api, customerId, receiver, await receiver.listen());
    say('4. webhook', { id: webhook?.webhookId, url: webhook?.url });
    const phone = await createPhone(api, customerId, receiver);
    say('5. phone', {
      deviceId: phone.deviceId,
      events: receiver.events.map((e) => `${WebhookEventType[e.type]} ${e.eventId}`),
    });
    const month = values.month ?? lastMonth();
    const statement = await closedStatement(api, customerId, month).catch((error: Error) => error);
    if (statement instanceof Error) {
      say(`6. statement ${month}`, statement.message);
      return;
    }
    const mine = await recompute(api, customerId, book, month);
    say(`6. statement ${month}`, {
      id: statement.statementId,
      total: `${statement.rating?.total} ${statement.rating?.currency}`,
      lines: statement.rating?.lines.map(
        (l) => `${BillingDimension[l.dimension]} ${l.quantity} x ${l.unitPrice} = ${l.amount}`,
      ),
    });
    say('7. recomputed from exported usage', mine);
    if (mine.total !== statement.rating?.total) process.exitCode = 1;
  } finally {
    await receiver.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
