// Webhooks end to end: the whole control plane on PostgreSQL (DATABASE_URL) or PGlite, a real
// receiver on 127.0.0.1 that checks every request the way the Standard Webhooks spec tells
// receivers to, and a restart of the control plane on the same database mid-delivery.
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fromJsonString } from '@bufbuild/protobuf';
import { Code, createClient } from '@connectrpc/connect';
import {
  DeviceService,
  DeviceState,
  ImageService,
  WebhookDeliveryOutcome,
  WebhookDeliveryState,
  WebhookEventSchema,
  WebhookEventType,
  WebhookService,
  WebhookState,
} from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import pino from 'pino';
import { bearerTransport } from '../api/bearer-transport.js';
import { connectError } from '../api/test-api.js';
import { createApiKey } from '../auth/api-keys.js';
import { insertHosts } from '../placement/testing.js';
import { type ControlPlane, startControlPlane } from '../server.js';
import type { Role } from '../store/schema.js';
import { insertTenant } from '../store/tenants.js';
import { createTestDatabase, type TestDatabase } from '../store/test-database.js';
import { testConfig } from '../test-control-plane.js';
import { enqueueWebhookEvent } from './outbox.js';

// ---- the receiver -------------------------------------------------------------------------------

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The status answered; undefined while held or when the sender went away first. */
  status?: number;
}

/** What the receiver answers on a path: a status, or 'hold' (answer nothing until released). */
type Behaviour = (count: number) => number | 'hold';

class Receiver {
  readonly received: Received[] = [];
  readonly #behaviours = new Map<string, Behaviour>();
  readonly #held: (() => void)[] = [];
  #server!: Server;
  port = 0;

  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => {
        body += chunk;
      });
      req.on('end', () => {
        const path = req.url ?? '';
        const entry: Received = { path, headers: req.headers, body };
        this.received.push(entry);
        const count = this.received.filter((r) => r.path === path).length;
        const answer = (this.#behaviours.get(path) ?? (() => 200))(count);
        if (answer === 'hold') {
          this.#held.push(() => res.destroy());
          return;
        }
        res.on('finish', () => {
          entry.status = answer;
        });
        res
          .writeHead(answer, { 'content-type': 'text/plain' })
          .end(answer < 300 ? 'thanks' : `no (${count})`);
      });
    });
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as AddressInfo).port;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  on(path: string, behaviour: Behaviour): void {
    this.#behaviours.set(path, behaviour);
  }

  at(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  async close(): Promise<void> {
    for (const release of this.#held) release();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/**
 * The receiver's side of Standard Webhooks, written from the spec: the signed content is
 * "<webhook-id>.<webhook-timestamp>.<body>", HMAC-SHA256 with the base64-decoded secret after
 * "whsec_", base64; webhook-signature lists "v1,<signature>" entries separated by spaces. Returns
 * which of the secrets have a matching entry.
 */
function verify(r: Received, secrets: readonly string[]): boolean[] {
  const id = String(r.headers['webhook-id'] ?? '');
  const timestamp = String(r.headers['webhook-timestamp'] ?? '');
  assert.ok(id && /^\d+$/.test(timestamp), 'webhook-id and webhook-timestamp are present');
  assert.ok(Math.abs(Date.now() / 1000 - Number(timestamp)) < 300, 'the timestamp is within 5 minutes');
  const given = String(r.headers['webhook-signature'] ?? '')
    .split(' ')
    .map((entry) => {
      const [version, signature] = entry.split(',');
      assert.equal(version, 'v1');
      return Buffer.from(signature ?? '', 'base64');
    });
  return secrets.map((secret) => {
    assert.match(secret, /^whsec_[A-Za-z0-9+/=]+$/);
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
    const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${r.body}`).digest();
    return given.some((sig) => sig.length === expected.length && timingSafeEqual(sig, expected));
  });
}

function eventOf(r: Received) {
  const event = fromJsonString(WebhookEventSchema, r.body);
  assert.equal(event.eventId, r.headers['webhook-id'], 'webhook-id is the event id');
  return event;
}

// ---- the control plane, restartable on one database ------------------------------------------------

const receiver = new Receiver();
let dataDir: string;
let external: TestDatabase<unknown> | undefined;
let plane: ControlPlane;
const tokens = new Map<string, string>();

function startPlane(): Promise<ControlPlane> {
  return startControlPlane(
    testConfig(dataDir, external?.url, {
      webhookAllowHosts: ['127.0.0.1'],
      webhookBackoffMs: 20,
      webhookBackoffMaxMs: 40,
      webhookPollMs: 20,
      webhookTimeoutMs: 5000,
      webhookDisableAfterMs: 2000,
    }),
    { logger: pino({ level: 'silent' }) },
  );
}

async function token(tenantId: string, role: Role): Promise<string> {
  const key = `${tenantId}/${role}`;
  let value = tokens.get(key);
  if (!value) {
    value = (await createApiKey(plane.deps.db, { tenantId, role, displayName: key })).token;
    tokens.set(key, value);
  }
  return value;
}

async function webhooksAs(tenantId: string, role: Role = 'tenant_admin') {
  return createClient(WebhookService, bearerTransport(plane.httpUrl, await token(tenantId, role)));
}

async function tenant(id: string, kind: 'reseller' | 'customer', parent: string) {
  await insertTenant(plane.deps.db, {
    id,
    kind,
    parent_id: parent,
    display_name: id,
    update_time: new Date(),
  });
}

before(async () => {
  await receiver.start();
  dataDir = await mkdtemp(join(tmpdir(), 'cphone-webhooks-'));
  external = process.env.DATABASE_URL ? await createTestDatabase({ kind: 'postgres' }) : undefined;
  plane = await startPlane();
  for (const id of ['res-a', 'res-b', 'res-c', 'res-d', 'res-e']) await tenant(id, 'reseller', 'platform');
  await tenant('cust-a', 'customer', 'res-a');
  await insertHosts(plane.deps.db, [{ id: 'wh-host-1' }]);
  const images = createClient(ImageService, bearerTransport(plane.httpUrl, plane.bootstrapToken));
  await images.createImage({
    imageId: 'android-14',
    image: {
      displayName: 'Android 14',
      containerImage: 'redroid/redroid:14.0.0_64only-latest',
      archs: ['arm64'],
      defaultSpec: { vcpuMillicores: 1000, memoryMib: 2048, storageGib: 16 },
    },
  });
});

after(async () => {
  await plane?.close();
  await receiver.close();
  await external?.close();
  await rm(dataDir, { recursive: true, force: true });
});

// ---- the tests -----------------------------------------------------------------------------------

test("a reseller's webhook receives its customer's device events and a statement event, each signed", async () => {
  const webhooks = await webhooksAs('res-a');
  const { webhook, secret } = await webhooks.createWebhook({
    url: receiver.url('/devices'),
    eventTypes: [
      WebhookEventType.DEVICE_CREATED,
      WebhookEventType.DEVICE_STATE_CHANGED,
      WebhookEventType.STATEMENT_CLOSED,
    ],
  });
  assert.equal(webhook?.state, WebhookState.ENABLED);
  assert.equal(webhook?.tenantId, 'res-a');
  const stored = await plane.deps.db
    .selectFrom('webhook')
    .select('secret')
    .where('id', '=', webhook?.webhookId ?? '')
    .executeTakeFirstOrThrow();
  assert.ok(!stored.secret.includes(secret.slice(6)), 'the secret is not stored in plain text');

  const devices = createClient(
    DeviceService,
    bearerTransport(plane.httpUrl, await token('cust-a', 'tenant_admin')),
  );
  const created = await devices.batchCreateDevices({ requests: [{ spec: { imageId: 'android-14' } }] });
  const deviceId = created.devices[0]?.deviceId ?? '';
  await devices.deleteDevice({ deviceId });

  // Billing's call: an event written in a transaction that rolls back is never delivered.
  const statement = {
    tenantId: 'res-a',
    month: '2026-11',
    statementId: 'stm_1',
    totalAmount: '12.50',
    currency: 'EUR',
  };
  await assert.rejects(
    plane.deps.db.transaction().execute(async (trx) => {
      await enqueueWebhookEvent(trx, {
        tenantId: 'res-a',
        type: WebhookEventType.STATEMENT_CLOSED,
        statement,
      });
      throw new Error('the change failed');
    }),
    /the change failed/,
  );
  const statementId = await plane.deps.db.transaction().execute((trx) =>
    enqueueWebhookEvent(trx, {
      tenantId: 'res-a',
      type: WebhookEventType.STATEMENT_CLOSED,
      statement: { ...statement, statementId: 'stm_2' },
    }),
  );
  plane.deps.webhooks?.nudge();

  const received = await waitFor(
    'created, deleting and statement events',
    () => receiver.at('/devices').map((r) => ({ r, event: eventOf(r) })),
    (list) =>
      list.some((e) => e.event.type === WebhookEventType.DEVICE_CREATED) &&
      list.some((e) => e.event.deviceEvent?.toState === DeviceState.DELETING) &&
      list.some((e) => e.event.type === WebhookEventType.STATEMENT_CLOSED),
  );
  for (const { r, event } of received) {
    assert.deepEqual(verify(r, [secret]), [true], 'the signature verifies');
    assert.equal(r.headers['content-type'], 'application/json');
    if (event.type === WebhookEventType.STATEMENT_CLOSED) {
      assert.equal(event.eventId, statementId);
      assert.equal(event.statement?.statementId, 'stm_2', 'the rolled-back statement event was never sent');
      assert.equal(event.statement?.totalAmount, '12.50');
    } else {
      assert.equal(event.tenantId, 'cust-a', "the event names the customer's tenant");
      assert.equal(event.device?.deviceId, deviceId);
    }
  }
  const createdEvent = received.find((e) => e.event.type === WebhookEventType.DEVICE_CREATED)?.event;
  assert.equal(createdEvent?.deviceEvent?.fromState, DeviceState.UNSPECIFIED);
  assert.equal(
    received.filter((e) => e.event.type === WebhookEventType.STATEMENT_CLOSED).length,
    1,
    'one statement event',
  );
  // Each event arrives once: no event id twice.
  const ids = received.map((e) => e.event.eventId);
  assert.equal(new Set(ids).size, ids.length);

  // A redelivery is a new delivery of the same event id.
  const again = await webhooks.redeliverWebhookEvent({
    webhookId: webhook?.webhookId ?? '',
    eventId: statementId ?? '',
  });
  const redelivered = await waitFor(
    'the redelivery',
    () => receiver.at('/devices').filter((r) => r.headers['webhook-id'] === statementId && r.status === 200),
    (list) => list.length === 2,
  );
  assert.deepEqual(verify(redelivered[1] as Received, [secret]), [true]);
  const log = await waitFor(
    'the redelivery in the log',
    () => webhooks.listWebhookDeliveries({ webhookId: webhook?.webhookId ?? '', eventId: statementId ?? '' }),
    (page) =>
      page.deliveries.length === 2 &&
      page.deliveries.every((d) => d.deliveryState === WebhookDeliveryState.SUCCEEDED),
  );
  assert.deepEqual(
    log.deliveries.map((d) => [d.deliveryId === again.deliveryId, d.manual, d.httpStatus, d.responseExcerpt]),
    [
      [true, true, 200, 'thanks'],
      [false, false, 200, 'thanks'],
    ],
  );
});

test('a receiver that fails 5 times then succeeds gets the event; the log shows 5 failures and 1 success', async () => {
  receiver.on('/flaky', (n) => (n <= 5 ? 503 : 204));
  const webhooks = await webhooksAs('res-b');
  const { webhook, secret } = await webhooks.createWebhook({
    url: receiver.url('/flaky'),
    eventTypes: [WebhookEventType.DEVICE_CREATED],
  });
  const webhookId = webhook?.webhookId ?? '';
  const sent = await webhooks.sendTestWebhookEvent({ webhookId });
  const log = await waitFor(
    'six attempts',
    () => webhooks.listWebhookDeliveries({ webhookId }),
    (page) =>
      page.deliveries.length === 6 && page.deliveries[0]?.outcome === WebhookDeliveryOutcome.SUCCEEDED,
  );
  // Newest first.
  assert.deepEqual(
    log.deliveries.map((d) => [d.attempt, d.outcome, d.httpStatus]),
    [
      [6, WebhookDeliveryOutcome.SUCCEEDED, 204],
      ...[5, 4, 3, 2, 1].map((n) => [n, WebhookDeliveryOutcome.HTTP_ERROR, 503]),
    ],
  );
  assert.ok(log.deliveries.every((d) => d.eventId === sent.eventId && d.deliveryId === sent.deliveryId));
  assert.equal(log.deliveries[1]?.responseExcerpt, 'no (5)');
  const requests = receiver.at('/flaky');
  assert.equal(requests.length, 6);
  for (const r of requests) {
    assert.equal(r.headers['webhook-id'], sent.eventId, 'the same event id in every attempt');
    assert.deepEqual(verify(r, [secret]), [true]);
  }
  assert.equal(eventOf(requests[0] as Received).type, WebhookEventType.TEST);
  const failures = await webhooks.listWebhookDeliveries({
    webhookId,
    outcome: WebhookDeliveryOutcome.HTTP_ERROR,
    pageSize: 3,
  });
  assert.equal(failures.deliveries.length, 3);
  const rest = await webhooks.listWebhookDeliveries({
    webhookId,
    outcome: WebhookDeliveryOutcome.HTTP_ERROR,
    pageSize: 3,
    pageToken: failures.nextPageToken,
  });
  assert.deepEqual(
    [...failures.deliveries, ...rest.deliveries].map((d) => d.attempt),
    [5, 4, 3, 2, 1],
  );
  assert.equal(
    (await webhooks.getWebhook({ webhookId })).webhook?.failingSinceTime,
    undefined,
    'healthy again',
  );
});

test('during a secret rotation both signatures are sent and each verifies', async () => {
  const webhooks = await webhooksAs('res-c');
  const { webhook, secret: first } = await webhooks.createWebhook({
    url: receiver.url('/rotate'),
    eventTypes: [WebhookEventType.DEVICE_CREATED],
  });
  const webhookId = webhook?.webhookId ?? '';
  const rotated = await webhooks.rotateWebhookSecret({ webhookId });
  assert.notEqual(rotated.secret, first);
  const overlapEnd = Number(rotated.webhook?.previousSecretExpireTime?.seconds ?? 0n) * 1000;
  assert.ok(Math.abs(overlapEnd - (Date.now() + 86_400_000)) < 60_000, 'the default overlap is 24 h');
  await webhooks.sendTestWebhookEvent({ webhookId });
  const [during] = await waitFor(
    'the test event',
    () => receiver.at('/rotate'),
    (l) => l.length === 1,
  );
  assert.equal(String(during?.headers['webhook-signature']).split(' ').length, 2);
  assert.deepEqual(
    verify(during as Received, [rotated.secret, first, 'whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA']),
    [true, true, false],
  );
  // Ending the overlap at once: only the new secret signs.
  const last = await webhooks.rotateWebhookSecret({ webhookId, overlap: { seconds: 0n } });
  await webhooks.sendTestWebhookEvent({ webhookId });
  const [, after] = await waitFor(
    'the second test event',
    () => receiver.at('/rotate'),
    (l) => l.length === 2,
  );
  assert.equal(String(after?.headers['webhook-signature']).split(' ').length, 1);
  assert.deepEqual(verify(after as Received, [last.secret, rotated.secret]), [true, false]);
});

test('a webhook failing for the disable window is disabled, with an event to the other webhook and an audit row', async () => {
  receiver.on('/down', () => 500);
  const webhooks = await webhooksAs('res-d');
  const { webhook: down } = await webhooks.createWebhook({
    url: receiver.url('/down'),
    eventTypes: [WebhookEventType.DEVICE_CREATED],
  });
  const { webhook: watcher, secret } = await webhooks.createWebhook({
    url: receiver.url('/watcher'),
    eventTypes: [WebhookEventType.WEBHOOK_DISABLED],
  });
  const webhookId = down?.webhookId ?? '';
  const sent = await webhooks.sendTestWebhookEvent({ webhookId });
  const disabled = await waitFor(
    'the webhook disabled',
    () => webhooks.getWebhook({ webhookId }),
    (r) => r.webhook?.state === WebhookState.DISABLED,
  );
  assert.match(disabled.webhook?.disabledReason ?? '', /every delivery attempt failed since/);
  const [notice] = await waitFor(
    'the disabled event',
    () => receiver.at('/watcher'),
    (l) => l.length === 1,
  );
  assert.deepEqual(verify(notice as Received, [secret]), [true]);
  const event = eventOf(notice as Received);
  assert.equal(event.type, WebhookEventType.WEBHOOK_DISABLED);
  assert.equal(event.webhook?.webhookId, webhookId);
  assert.equal(event.webhook?.state, WebhookState.DISABLED);
  assert.ok(watcher);
  // Its pending delivery was dropped: nothing more goes out.
  const log = await webhooks.listWebhookDeliveries({ webhookId, eventId: sent.eventId, pageSize: 1 });
  assert.equal(log.deliveries[0]?.deliveryState, WebhookDeliveryState.DROPPED);
  await plane.deps.audit.flush();
  const audit = await plane.deps.db
    .selectFrom('audit_log')
    .selectAll()
    .where('method', '=', 'Webhook/Disabled')
    .where('tenant_id', '=', 'res-d')
    .execute();
  assert.equal(audit.length, 1);
  assert.match(JSON.stringify(audit[0]?.detail), /every delivery attempt failed/);
  // Enabled again by its owner: a fresh start.
  const enabled = await webhooks.updateWebhook({
    webhook: { webhookId, state: WebhookState.ENABLED },
    updateMask: { paths: ['state'] },
  });
  assert.equal(enabled.webhook?.state, WebhookState.ENABLED);
  assert.equal(enabled.webhook?.disabledReason, '');
});

test("a tenant cannot see or touch another tenant's webhooks; tenant users cannot manage any", async () => {
  const owner = await webhooksAs('res-a');
  const { webhook } = await owner.createWebhook({
    tenantId: 'cust-a',
    url: receiver.url('/private'),
    eventTypes: [WebhookEventType.DEVICE_RUNNING],
  });
  const webhookId = webhook?.webhookId ?? '';
  assert.equal(webhook?.tenantId, 'cust-a', "a reseller manages its customer's webhooks");
  assert.equal(
    (await (await webhooksAs('cust-a')).getWebhook({ webhookId })).webhook?.url,
    receiver.url('/private'),
  );
  const stranger = await webhooksAs('res-b');
  const notFound = connectError(Code.NotFound);
  await assert.rejects(stranger.getWebhook({ webhookId }), notFound);
  await assert.rejects(
    stranger.updateWebhook({
      webhook: { webhookId, url: receiver.url('/stolen') },
      updateMask: { paths: ['url'] },
    }),
    notFound,
  );
  await assert.rejects(stranger.deleteWebhook({ webhookId }), notFound);
  await assert.rejects(stranger.rotateWebhookSecret({ webhookId }), notFound);
  await assert.rejects(stranger.sendTestWebhookEvent({ webhookId }), notFound);
  await assert.rejects(stranger.redeliverWebhookEvent({ webhookId, eventId: 'evt_x' }), notFound);
  await assert.rejects(stranger.listWebhookDeliveries({ webhookId }), notFound);
  await assert.rejects(stranger.listWebhooks({ tenantId: 'cust-a' }), notFound);
  assert.deepEqual(
    (await stranger.listWebhooks({})).webhooks.map((w) => w.url),
    [receiver.url('/flaky')],
  );
  const user = await webhooksAs('res-a', 'tenant_user');
  await assert.rejects(user.listWebhooks({}), connectError(Code.PermissionDenied, /tenant_admin/));
  // A customer's admin cannot subscribe to fleet events.
  await assert.rejects(
    (await webhooksAs('cust-a')).createWebhook({
      url: receiver.url('/ops'),
      eventTypes: [WebhookEventType.HOST_DRAINED],
    }),
    connectError(Code.InvalidArgument, /event_types .*platform tenant only/),
  );
});

test('URLs to private, loopback and link-local targets are refused naming the url', async () => {
  const webhooks = await webhooksAs('res-e');
  for (const url of [
    'https://169.254.169.254/latest/meta-data/',
    'https://10.0.0.1/hook',
    'https://[::1]/hook',
  ]) {
    await assert.rejects(
      webhooks.createWebhook({ url, eventTypes: [WebhookEventType.DEVICE_CREATED] }),
      connectError(Code.InvalidArgument, /invalid url .*private, loopback, link-local/),
      url,
    );
  }
  await assert.rejects(
    webhooks.createWebhook({
      url: 'http://93.184.216.34/hook',
      eventTypes: [WebhookEventType.DEVICE_CREATED],
    }),
    connectError(Code.InvalidArgument, /invalid url .*https/),
  );
  const { webhook } = await webhooks.createWebhook({
    url: receiver.url('/ok'),
    eventTypes: [WebhookEventType.DEVICE_CREATED],
  });
  await assert.rejects(
    webhooks.updateWebhook({
      webhook: { webhookId: webhook?.webhookId ?? '', url: 'https://169.254.169.254/' },
      updateMask: { paths: ['url'] },
    }),
    connectError(Code.InvalidArgument, /invalid webhook\.url "https:\/\/169\.254\.169\.254\/"/),
  );
});

// Last: it restarts the control plane.
test('a restart mid-delivery delivers the same event id again, and it succeeds once', async () => {
  receiver.on('/restart', (n) => (n === 1 ? 'hold' : 200));
  const webhooks = await webhooksAs('res-e');
  const { webhook, secret } = await webhooks.createWebhook({
    url: receiver.url('/restart'),
    eventTypes: [WebhookEventType.DEVICE_CREATED],
  });
  const webhookId = webhook?.webhookId ?? '';
  const sent = await webhooks.sendTestWebhookEvent({ webhookId });
  await waitFor(
    'the first attempt, held by the receiver',
    () => receiver.at('/restart'),
    (l) => l.length === 1,
  );
  await plane.close();
  plane = await startPlane();
  const requests = await waitFor(
    'the attempt after the restart',
    () => receiver.at('/restart'),
    (l) => l.some((r) => r.status === 200),
  );
  assert.ok(
    requests.every((r) => r.headers['webhook-id'] === sent.eventId),
    'the same event id',
  );
  assert.equal(requests.filter((r) => r.status === 200).length, 1, 'one successful delivery');
  for (const r of requests) assert.deepEqual(verify(r, [secret]), [true], 'the secret survived the restart');
  const log = await waitFor(
    'the log',
    async () => (await webhooksAs('res-e')).listWebhookDeliveries({ webhookId }),
    (page) => page.deliveries[0]?.outcome === WebhookDeliveryOutcome.SUCCEEDED,
  );
  assert.deepEqual(
    log.deliveries.map((d) => [d.eventId, d.outcome]),
    [
      [sent.eventId, WebhookDeliveryOutcome.SUCCEEDED],
      [sent.eventId, WebhookDeliveryOutcome.NETWORK_ERROR],
    ],
  );
  assert.match(log.deliveries[1]?.error ?? '', /control plane stopped/);
  // Nothing more arrives: the delivery is done.
  assert.equal(log.deliveries[0]?.deliveryState, WebhookDeliveryState.SUCCEEDED);
});
