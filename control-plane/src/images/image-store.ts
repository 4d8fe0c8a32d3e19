import { create } from '@bufbuild/protobuf';
import { type Image, ImageSchema, ImageState } from '@cphone/proto';
import { type Kysely, sql, type Transaction } from 'kysely';
import { ts } from '../api/convert.js';
import { PLATFORM_TENANT_ID } from '../auth/bootstrap.js';
import { defaultSpecOf, type ImageRow } from '../devices/spec.js';
import { FailedPreconditionError, NotFoundError } from '../errors.js';
import type { Database } from '../store/schema.js';

/**
 * Who may use an image: a platform image (tenant_id null) is usable by every tenant; a tenant's
 * image by that tenant and its descendants, so a reseller's templates serve its customers.
 * `imageOwners(t)` is t and its ancestors: the tenant ids whose images t may use.
 */
export async function imageOwners(db: Kysely<Database>, tenantId: string): Promise<string[]> {
  const result = await sql<{ id: string }>`
    with recursive up(id, parent_id) as (
      select id, parent_id from tenant where id = ${tenantId}
      union all
      select t.id, t.parent_id from tenant t join up on t.id = up.parent_id
    )
    select id from up`.execute(db);
  return result.rows.map((r) => r.id);
}

/** Images a caller may read: usable by its own tenant, or owned by a tenant it manages. */
export async function readableOwners(
  db: Kysely<Database>,
  principal: { tenantId: string; visibleTenants: readonly string[] },
): Promise<string[]> {
  return [...new Set([...(await imageOwners(db, principal.tenantId)), ...principal.visibleTenants])];
}

/** One image the owners may see, or NOT_FOUND (also for a deleted one). */
export async function loadImage(
  db: Kysely<Database>,
  owners: readonly string[],
  imageId: string,
  options: { lock?: 'share' | 'update' } = {},
): Promise<ImageRow> {
  let query = db
    .selectFrom('image')
    .selectAll()
    .where('id', '=', imageId)
    .where('delete_time', 'is', null)
    .where((eb) => eb.or([eb('tenant_id', 'is', null), eb('tenant_id', 'in', owners)]));
  if (options.lock === 'share') query = query.forShare();
  if (options.lock === 'update') query = query.forUpdate();
  const row = await query.executeTakeFirst();
  if (!row) throw new NotFoundError('image', imageId);
  return row;
}

/**
 * The images a batch of creates names, usable by `tenantId`, locked FOR SHARE so DeleteImage (which
 * locks FOR UPDATE) cannot remove one under the transaction that is creating devices from it.
 * `fieldOf(id)` names the first request field that used the id, for the NOT_FOUND message.
 */
export async function loadUsableImages(
  trx: Transaction<Database>,
  tenantId: string,
  ids: readonly string[],
): Promise<Map<string, ImageRow>> {
  const unique = [...new Set(ids)].sort();
  if (unique.length === 0) return new Map();
  const owners = await imageOwners(trx, tenantId);
  const rows = await trx
    .selectFrom('image')
    .selectAll()
    .where('id', 'in', unique)
    .where('delete_time', 'is', null)
    .where((eb) => eb.or([eb('tenant_id', 'is', null), eb('tenant_id', 'in', owners)]))
    .orderBy('id')
    .forShare()
    .execute();
  return new Map(rows.map((r) => [r.id, r]));
}

export function assertActive(image: ImageRow, field: string): void {
  if (image.state !== 'active') {
    throw new FailedPreconditionError(
      `${field}: image ${JSON.stringify(image.id)} is ${image.state}; new devices may not use it`,
    );
  }
}

export function imageToProto(row: ImageRow): Image {
  const defaultSpec = defaultSpecOf(row);
  return create(ImageSchema, {
    imageId: row.id,
    tenantId: row.tenant_id ?? PLATFORM_TENANT_ID,
    displayName: row.display_name,
    containerImage: row.image_ref,
    androidVersion: row.android_version,
    sdkLevel: row.sdk_level,
    archs: row.arches,
    defaultSpec,
    minVcpuMillicores: row.min_vcpu_millicores,
    minMemoryMib: row.min_memory_mib,
    minStorageGib: row.min_storage_gib,
    state: row.state === 'active' ? ImageState.ACTIVE : ImageState.DEPRECATED,
    labels: row.labels,
    ...(row.create_time ? { createTime: ts(row.create_time) } : {}),
    ...(row.update_time ? { updateTime: ts(row.update_time) } : {}),
  });
}
