import { create } from '@bufbuild/protobuf';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import {
  type ApiKey,
  ApiKeySchema,
  type ApiKeyService,
  type CreateApiKeyRequest,
  type GetApiKeyRequest,
  type ListApiKeysRequest,
  type RevokeApiKeyRequest,
} from '@cphone/proto';
import type { Kysely, Selectable } from 'kysely';
import { createApiKey } from '../auth/api-keys.js';
import type { AuthCache } from '../auth/auth-cache.js';
import { hasRole } from '../auth/principal.js';
import { requireRole, resolveTenant } from '../auth/scope.js';
import { AlreadyExistsError, NotFoundError, PermissionDeniedError } from '../errors.js';
import type { ApiKeyTable, Database } from '../store/schema.js';
import { principalOf } from './context.js';
import { compact, dateOf, roleFromProto, roleToProto, ts } from './convert.js';
import { validDisplayName } from './display-name.js';
import { idempotentIn } from './idempotency.js';
import { pageOf, readPage } from './pagination.js';
import { transact } from './validate-only.js';

function toProto(row: Selectable<ApiKeyTable>): ApiKey {
  return create(
    ApiKeySchema,
    compact({
      apiKeyId: row.id,
      tenantId: row.tenant_id,
      displayName: row.display_name,
      role: roleToProto(row.role),
      secretPrefix: `${row.id}.`,
      createTime: ts(row.create_time),
      expireTime: ts(row.expire_time),
      revokeTime: ts(row.revoke_time),
      lastUseTime: ts(row.last_used_time),
    }),
  );
}

export type ApiKeyServiceDeps = { db: Kysely<Database>; authCache?: AuthCache | undefined };

async function load(deps: ApiKeyServiceDeps, tenants: readonly string[], id: string) {
  const row = await deps.db
    .selectFrom('api_key')
    .selectAll()
    .where('id', '=', id)
    .where('tenant_id', 'in', tenants)
    .executeTakeFirst();
  if (!row) throw new NotFoundError('api key', id);
  return row;
}

/**
 * Creates a key and shows its secret once. A retry with the same request_id is ALREADY_EXISTS
 * naming the key it made: the secret is never stored, so it cannot be shown again.
 */
export async function createKey(deps: ApiKeyServiceDeps, req: CreateApiKeyRequest, context: HandlerContext) {
  const principal = principalOf(context);
  requireRole(principal, 'tenant_admin', 'creating API keys');
  const tenantId = resolveTenant(principal, req.tenantId);
  const role = roleFromProto(req.role);
  if (!hasRole(principal, role)) {
    throw new PermissionDeniedError(`a ${principal.role} cannot create a key with role ${role}`);
  }
  const input = {
    tenantId,
    role,
    displayName: validDisplayName(req.displayName),
    expireTime: dateOf(req.expireTime),
  };
  const { row, token } = await transact(deps.db, req.validateOnly, async (trx) => {
    const { id, token } = await idempotentIn(
      trx,
      {
        tenantId,
        method: 'CreateApiKey',
        key: req.requestId,
        request: { ...input, expireTime: req.expireTime },
      },
      (t) => createApiKey(t, input),
      {
        save: ({ id }) => ({ apiKeyId: id }),
        load: (saved) => {
          const apiKeyId = (saved as { apiKeyId?: string } | null)?.apiKeyId ?? '';
          throw new AlreadyExistsError(`api key ${apiKeyId}`, 'request_id', req.requestId);
        },
      },
    );
    return {
      row: await trx.selectFrom('api_key').selectAll().where('id', '=', id).executeTakeFirstOrThrow(),
      token,
    };
  });
  const apiKey = toProto(row);
  if (!req.validateOnly) return { apiKey, secret: token };
  // A key only made up: no id, and no secret to show.
  apiKey.apiKeyId = '';
  apiKey.secretPrefix = '';
  return { apiKey, secret: '' };
}

export async function getKey(deps: ApiKeyServiceDeps, req: GetApiKeyRequest, context: HandlerContext) {
  return { apiKey: toProto(await load(deps, principalOf(context).visibleTenants, req.apiKeyId)) };
}

export async function listKeys(deps: ApiKeyServiceDeps, req: ListApiKeysRequest, context: HandlerContext) {
  const principal = principalOf(context);
  const tenantId = resolveTenant(principal, req.tenantId);
  const page = readPage(req.pageSize, req.pageToken, { tenantId, revoked: req.includeRevoked });
  let query = deps.db
    .selectFrom('api_key')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('id')
    .limit(page.limit);
  if (!req.includeRevoked) query = query.where('revoke_time', 'is', null);
  if (page.after) query = query.where('id', '>', page.after);
  const { items, nextPageToken } = pageOf(await query.execute(), page, (r) => r.id);
  return { apiKeys: items.map(toProto), nextPageToken };
}

export async function revokeKey(deps: ApiKeyServiceDeps, req: RevokeApiKeyRequest, context: HandlerContext) {
  const principal = principalOf(context);
  requireRole(principal, 'tenant_admin', 'revoking API keys');
  const row = await load(deps, principal.visibleTenants, req.apiKeyId);
  const revoked = await deps.db
    .updateTable('api_key')
    .set({ revoke_time: row.revoke_time ?? new Date() })
    .where('id', '=', row.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  // Before the answer: the caller's next call, on any replica, must find the key refused.
  await deps.authCache?.changed({ kind: 'key', keyId: row.id });
  return { apiKey: toProto(revoked) };
}

export function apiKeyService(deps: ApiKeyServiceDeps): Partial<ServiceImpl<typeof ApiKeyService>> {
  return {
    createApiKey: (req, context) => createKey(deps, req, context),
    getApiKey: (req, context) => getKey(deps, req, context),
    listApiKeys: (req, context) => listKeys(deps, req, context),
    revokeApiKey: (req, context) => revokeKey(deps, req, context),
  };
}
