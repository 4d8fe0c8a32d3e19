// The resource each audited call names, read off its request and response: billing and webhook
// calls name their price book, statement, webhook or event and the tenant they act for.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import {
  CloseStatementRequestSchema,
  CloseStatementResponseSchema,
  CreatePriceBookRequestSchema,
  CreatePriceBookResponseSchema,
  RedeliverWebhookEventRequestSchema,
  SetQuotaRequestSchema,
  UpdateDeviceRequestSchema,
} from '@cphone/proto';
import { auditResource } from './resources.js';

test('a price book create names the book and the tenant it prices', () => {
  const request = create(CreatePriceBookRequestSchema, {
    requestId: 'r-1',
    priceBook: { tenantId: 'tnt_c', currency: 'EUR', displayName: 'retail' },
  });
  const response = create(CreatePriceBookResponseSchema, {
    priceBook: { priceBookId: 'pbk_1', tenantId: 'tnt_c' },
  });
  const r = auditResource('BillingService/CreatePriceBook', CreatePriceBookRequestSchema, request, response);
  assert.deepEqual([r.type, r.id, r.tenantHint, r.idempotencyKey], ['price_book', 'pbk_1', 'tnt_c', 'r-1']);
});

test('closing a statement names the statement; a refused close names the tenant', () => {
  const request = create(CloseStatementRequestSchema, { tenantId: 'tnt_c', month: '2026-11' });
  const done = auditResource(
    'BillingService/CloseStatement',
    CloseStatementRequestSchema,
    request,
    create(CloseStatementResponseSchema, { statement: { statementId: 'stm_1' } }),
  );
  assert.deepEqual([done.type, done.id, done.tenantHint], ['statement', 'stm_1', 'tnt_c']);
  const refused = auditResource(
    'BillingService/CloseStatement',
    CloseStatementRequestSchema,
    request,
    undefined,
  );
  assert.deepEqual([refused.type, refused.id, refused.tenantHint], ['statement', '', 'tnt_c']);
});

test('a redelivery names the event; SetQuota and UpdateDevice name their tenant and device', () => {
  const redeliver = auditResource(
    'WebhookService/RedeliverWebhookEvent',
    RedeliverWebhookEventRequestSchema,
    create(RedeliverWebhookEventRequestSchema, { webhookId: 'whk_1', eventId: 'evt_1' }),
    undefined,
  );
  assert.deepEqual([redeliver.type, redeliver.id], ['webhook_event', 'evt_1']);
  const quota = auditResource(
    'TenantService/SetQuota',
    SetQuotaRequestSchema,
    create(SetQuotaRequestSchema, { quota: { tenantId: 'tnt_c', maxDevices: 3 } }),
    undefined,
  );
  assert.deepEqual([quota.type, quota.id], ['tenant', 'tnt_c']);
  const update = auditResource(
    'DeviceService/UpdateDevice',
    UpdateDeviceRequestSchema,
    create(UpdateDeviceRequestSchema, {
      device: { deviceId: 'dev_1' },
      updateMask: { paths: ['display_name'] },
    }),
    undefined,
  );
  assert.deepEqual(
    [update.type, update.id, update.detail.update_mask],
    ['device', 'dev_1', ['display_name']],
  );
});
