// ImageService: device templates. Roles: anyone may read the images usable by its tenant (its own,
// its ancestors', the platform's) and those of the tenants it manages. Writing a platform image (one
// created in the platform tenant, stored with tenant_id null and usable by everyone) needs OPS or
// PLATFORM_ADMIN; writing a tenant's own image needs TENANT_ADMIN of that tenant or an ancestor.
// Images are soft-deleted (devices keep a reference), and only while no device uses them.
import { fromJson, type JsonValue, toJson } from '@bufbuild/protobuf';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import {
  type CreateImageRequest,
  CreateImageRequestSchema,
  type DeleteImageRequest,
  type GetImageRequest,
  ImageSchema,
  type ImageService,
  type ListImagesRequest,
  type UpdateImageRequest,
} from '@cphone/proto';
import { type Kysely, sql } from 'kysely';
import { principalOf } from '../api/context.js';
import { maskPaths } from '../api/field-mask.js';
import { idempotentIn } from '../api/idempotency.js';
import { pageOf, readPage } from '../api/pagination.js';
import { transact } from '../api/validate-only.js';
import { PLATFORM_TENANT_ID } from '../auth/bootstrap.js';
import type { Principal } from '../auth/principal.js';
import { requireRole, resolveTenant } from '../auth/scope.js';
import type { Clock } from '../clock.js';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  PermissionDeniedError,
} from '../errors.js';
import { newId } from '../ids.js';
import type { Database } from '../store/schema.js';
import { imageOwners, imageToProto, loadImage, readableOwners } from './image-store.js';
import {
  checkDefaultsMeetMinimums,
  checkImageId,
  IMAGE_MASK_PATHS,
  type ImageMaskPath,
  type ImageValues,
  imageValues,
} from './validate.js';

export interface ImageServiceDeps {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
}

/** Loads an image the caller may change, or fails the way the caller may learn about. */
async function loadWritable(
  deps: ImageServiceDeps,
  principal: Principal,
  imageId: string,
  lock: boolean,
  trx: Kysely<Database> = deps.db,
) {
  const row = await loadImage(
    trx,
    await readableOwners(trx, principal),
    imageId,
    lock ? { lock: 'update' } : {},
  );
  if (row.tenant_id === null) requireRole(principal, 'ops', 'changing a platform image');
  else {
    if (!principal.visibleTenants.includes(row.tenant_id)) {
      throw new PermissionDeniedError(
        `image ${JSON.stringify(imageId)} belongs to tenant ${row.tenant_id}, which the caller does not manage`,
      );
    }
    requireRole(principal, 'tenant_admin', 'changing an image');
  }
  return row;
}

export async function createImage(deps: ImageServiceDeps, req: CreateImageRequest, context: HandlerContext) {
  const principal = principalOf(context);
  const owner = resolveTenant(principal, req.tenantId);
  const platform = owner === PLATFORM_TENANT_ID;
  requireRole(
    principal,
    platform ? 'ops' : 'tenant_admin',
    platform ? 'creating a platform image' : 'creating an image',
  );
  if (!req.image) throw new InvalidArgumentError('image', null, 'is required');
  if (req.imageId) checkImageId(req.imageId);
  const values = imageValues(req.image, IMAGE_MASK_PATHS) as ImageValues;
  checkDefaultsMeetMinimums({ ...values, default_spec: JSON.parse(values.default_spec) });
  let made = false;
  const image = await transact(deps.db, req.validateOnly, (tx) =>
    idempotentIn(
      tx,
      {
        tenantId: principal.tenantId,
        method: 'ImageService/CreateImage',
        key: req.requestId,
        // A dry run and the real call are one request to the key.
        request: toJson(CreateImageRequestSchema, { ...req, validateOnly: false }),
      },
      async (trx) => {
        const id = req.imageId || newId('img');
        const now = deps.clock.now();
        const inserted = await trx
          .insertInto('image')
          .values({
            id,
            tenant_id: platform ? null : owner,
            ...values,
            required_labels: '{}',
            update_time: now,
            create_time: now,
          })
          .onConflict((oc) => oc.column('id').doNothing())
          .returningAll()
          .executeTakeFirst();
        if (!inserted) throw new AlreadyExistsError('image', 'image_id', id);
        made = true;
        return imageToProto(inserted);
      },
      {
        save: (value) => toJson(ImageSchema, value),
        load: (saved) => fromJson(ImageSchema, saved as JsonValue),
      },
    ),
  );
  // An id the server would have generated is not known before the real call.
  if (req.validateOnly && made && !req.imageId) image.imageId = '';
  return { image };
}

export async function getImage(deps: ImageServiceDeps, req: GetImageRequest, context: HandlerContext) {
  const principal = principalOf(context);
  return {
    image: imageToProto(await loadImage(deps.db, await readableOwners(deps.db, principal), req.imageId)),
  };
}

export async function listImages(deps: ImageServiceDeps, req: ListImagesRequest, context: HandlerContext) {
  const principal = principalOf(context);
  const tenantId = resolveTenant(principal, req.tenantId);
  const owners = await imageOwners(deps.db, tenantId);
  const page = readPage(req.pageSize, req.pageToken, {
    tenantId,
    arch: req.arch,
    deprecated: req.includeDeprecated,
  });
  let query = deps.db
    .selectFrom('image')
    .selectAll()
    .where('delete_time', 'is', null)
    .where((eb) => eb.or([eb('tenant_id', 'is', null), eb('tenant_id', 'in', owners)]))
    .orderBy('id')
    .limit(page.limit);
  if (!req.includeDeprecated) query = query.where('state', '=', 'active');
  if (req.arch) {
    // An image naming no architecture runs on any.
    const arch = JSON.stringify([req.arch]);
    query = query.where(sql<boolean>`(arches = '[]'::jsonb or arches @> ${arch}::jsonb)`);
  }
  if (page.after) query = query.where('id', '>', page.after);
  const { items, nextPageToken } = pageOf(await query.execute(), page, (r) => r.id);
  return { images: items.map(imageToProto), nextPageToken };
}

export async function updateImage(deps: ImageServiceDeps, req: UpdateImageRequest, context: HandlerContext) {
  const principal = principalOf(context);
  if (!req.image?.imageId)
    throw new InvalidArgumentError('image.image_id', req.image?.imageId ?? '', 'is required');
  const image = req.image;
  const paths = maskPaths(req.updateMask, IMAGE_MASK_PATHS);
  const values = imageValues(image, [...paths] as ImageMaskPath[]);
  const updated = await transact(deps.db, req.validateOnly, async (trx) => {
    const row = await loadWritable(deps, principal, image.imageId, true, trx);
    const merged = {
      default_spec: values.default_spec ? JSON.parse(values.default_spec) : row.default_spec,
      min_vcpu_millicores: values.min_vcpu_millicores ?? row.min_vcpu_millicores,
      min_memory_mib: values.min_memory_mib ?? row.min_memory_mib,
      min_storage_gib: values.min_storage_gib ?? row.min_storage_gib,
    };
    checkDefaultsMeetMinimums(merged);
    return trx
      .updateTable('image')
      .set({ ...values, update_time: deps.clock.now() })
      .where('id', '=', row.id)
      .returningAll()
      .executeTakeFirstOrThrow();
  });
  return { image: imageToProto(updated) };
}

export async function deleteImage(deps: ImageServiceDeps, req: DeleteImageRequest, context: HandlerContext) {
  const principal = principalOf(context);
  await deps.db.transaction().execute(async (trx) => {
    // FOR UPDATE waits for creates holding the image FOR SHARE, so their devices are counted.
    const row = await loadWritable(deps, principal, req.imageId, true, trx);
    const used = await trx
      .selectFrom('device')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('image_id', '=', row.id)
      .where('state', '!=', 'deleted')
      .executeTakeFirstOrThrow();
    if (Number(used.n) > 0) {
      throw new FailedPreconditionError(
        `image ${JSON.stringify(row.id)} is used by ${used.n} device(s); deprecate it instead (state DEPRECATED)`,
      );
    }
    await trx
      .updateTable('image')
      .set({ delete_time: deps.clock.now(), update_time: deps.clock.now() })
      .where('id', '=', row.id)
      .execute();
  });
  return {};
}

export function imageService(deps: ImageServiceDeps): Partial<ServiceImpl<typeof ImageService>> {
  return {
    createImage: (req, context) => createImage(deps, req, context),
    getImage: (req, context) => getImage(deps, req, context),
    listImages: (req, context) => listImages(deps, req, context),
    updateImage: (req, context) => updateImage(deps, req, context),
    deleteImage: (req, context) => deleteImage(deps, req, context),
  };
}
