import { create } from '@bufbuild/protobuf';
import type { ServiceImpl } from '@connectrpc/connect';
import { type ApiKey, ApiKeySchema, type ApiKeyService } from '@cphone/proto';
import type { Kysely, Selectable } from 'kysely';
import { createApiKey } from '../auth/api-keys.js';
import { hasRole } from '../auth/principal.js';
import { requireRole, resolveTenant } from '../auth/scope.js';
import { NotFoundError, PermissionDeniedError } from '../errors.js';
import type { ApiKeyTable, Database } from '../store/schema.js';
import { principalOf } from './context.js';
import { compact, dateOf, roleFromProto, roleToProto, ts } from './convert.js';
import { validDisplayName } from './display-name.js';
import { pageOf, readPage } from './pagination.js';

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

export function apiKeyService(deps: { db: Kysely<Database> }): Partial<ServiceImpl<typeof ApiKeyService>> {
  const { db } = deps;
  async function load(tenants: readonly string[], id: string) {
    const row = await db
      .selectFrom('api_key')
      .selectAll()
      .where('id', '=', id)
      .where('tenant_id', 'in', tenants)
      .executeTakeFirst();
    if (!row) throw new NotFoundError('api key', id);
    return row;
  }
  return {
    async createApiKey(req, context) {
      const principal = principalOf(context);
      requireRole(principal, 'tenant_admin', 'creating API keys');
      const tenantId = resolveTenant(principal, req.tenantId);
      const role = roleFromProto(req.role);
      if (!hasRole(principal, role)) {
        throw new PermissionDeniedError(`a ${principal.role} cannot create a key with role ${role}`);
      }
      const { id, token } = await createApiKey(db, {
        tenantId,
        role,
        displayName: validDisplayName(req.displayName),
        expireTime: dateOf(req.expireTime),
      });
      return { apiKey: toProto(await load([tenantId], id)), secret: token };
    },
    async getApiKey(req, context) {
      return { apiKey: toProto(await load(principalOf(context).visibleTenants, req.apiKeyId)) };
    },
    async listApiKeys(req, context) {
      const principal = principalOf(context);
      const tenantId = resolveTenant(principal, req.tenantId);
      const page = readPage(req.pageSize, req.pageToken, { tenantId, revoked: req.includeRevoked });
      let query = db
        .selectFrom('api_key')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .orderBy('id')
        .limit(page.limit);
      if (!req.includeRevoked) query = query.where('revoke_time', 'is', null);
      if (page.after) query = query.where('id', '>', page.after);
      const { items, nextPageToken } = pageOf(await query.execute(), page, (r) => r.id);
      return { apiKeys: items.map(toProto), nextPageToken };
    },
    async revokeApiKey(req, context) {
      const principal = principalOf(context);
      requireRole(principal, 'tenant_admin', 'revoking API keys');
      const row = await load(principal.visibleTenants, req.apiKeyId);
      const revoked = await db
        .updateTable('api_key')
        .set({ revoke_time: row.revoke_time ?? new Date() })
        .where('id', '=', row.id)
        .returningAll()
        .executeTakeFirstOrThrow();
      return { apiKey: toProto(revoked) };
    },
  };
}
