// Names people type for hosts, devices, tenants, keys and images: an id (host_…, dev_…, tnt_…, key_…,
// or an image's chosen id) or a name. A name is looked up in the list; two resources with the same
// name are refused rather than guessed between.
import { Code, ConnectError } from '@connectrpc/connect';
import type { ApiKey, Device, Host, Image, Tenant } from '@cphone/proto/api';
import type { Api } from './api.js';
import { CliError, EXIT } from './errors.js';

/** Every page of a paginated list. */
export async function listAll<T>(
  page: (pageToken: string) => Promise<{ items: T[]; nextPageToken: string }>,
): Promise<T[]> {
  const all: T[] = [];
  let token = '';
  do {
    const res = await page(token);
    all.push(...res.items);
    token = res.nextPageToken;
  } while (token);
  return all;
}

export async function listHosts(
  api: Api,
  request: { labelSelector?: Record<string, string> } = {},
): Promise<Host[]> {
  return listAll(async (pageToken) => {
    const r = await api.hosts.listHosts({ pageSize: 1000, pageToken, ...request });
    return { items: r.hosts, nextPageToken: r.nextPageToken };
  });
}

export async function listDevices(
  api: Api,
  request: {
    tenantId?: string;
    labelSelector?: Record<string, string>;
    hostId?: string;
    includeDescendants?: boolean;
  },
): Promise<Device[]> {
  return listAll(async (pageToken) => {
    const r = await api.devices.listDevices({ pageSize: 1000, pageToken, ...request });
    return { items: r.devices, nextPageToken: r.nextPageToken };
  });
}

function notFound(kind: string, name: string): CliError {
  return new CliError(`NOT_FOUND: ${kind} "${name}" does not exist`, EXIT.notFound);
}

/** A get by id, its NOT_FOUND in the CLI's words. */
async function orNotFound<T>(kind: string, id: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (e) {
    if (ConnectError.from(e).code === Code.NotFound) throw notFound(kind, id);
    throw e;
  }
}

/** The one match of a name, or NOT_FOUND, or INVALID_ARGUMENT listing the ids to choose from. */
function pickOne<T>(kind: string, name: string, matches: readonly T[], id: (item: T) => string): T {
  const [first, ...rest] = matches;
  if (first === undefined) throw notFound(kind, name);
  if (!rest.length) return first;
  const ids = matches.map(id);
  throw new CliError(
    `INVALID_ARGUMENT: ${ids.length} ${kind}s are named "${name}" (${ids.join(', ')}): name one by id`,
    EXIT.invalidArgument,
  );
}

export async function resolveHost(api: Api, nameOrId: string): Promise<Host> {
  if (nameOrId.startsWith('host_')) {
    const { host } = await api.hosts.getHost({ hostId: nameOrId });
    if (host) return host;
  }
  const matches = (await listHosts(api)).filter((h) => h.name === nameOrId || h.hostId === nameOrId);
  return pickOne('host', nameOrId, matches, (h) => h.hostId);
}

export async function resolveDevice(api: Api, nameOrId: string, tenantId = ''): Promise<Device> {
  if (nameOrId.startsWith('dev_')) {
    const { device } = await orNotFound('device', nameOrId, api.devices.getDevice({ deviceId: nameOrId }));
    if (device) return device;
  }
  const matches = (await listDevices(api, { tenantId, includeDescendants: true })).filter(
    (d) => d.displayName === nameOrId,
  );
  return pickOne('device', nameOrId, matches, (d) => d.deviceId);
}

/** The tenant itself ("" is the caller's own) and every descendant, parents before children. */
export async function listTenantTree(api: Api, rootId = ''): Promise<Tenant[]> {
  const { tenant: root } = await api.tenants.getTenant({ tenantId: rootId });
  if (!root) return [];
  const below = await listAll(async (pageToken) => {
    const r = await api.tenants.listTenants({
      parentTenantId: root.tenantId,
      recursive: true,
      pageSize: 1000,
      pageToken,
    });
    return { items: r.tenants, nextPageToken: r.nextPageToken };
  });
  const children = new Map<string, Tenant[]>();
  for (const t of below) children.set(t.parentTenantId, [...(children.get(t.parentTenantId) ?? []), t]);
  const ordered: Tenant[] = [];
  const visit = (t: Tenant) => {
    ordered.push(t);
    for (const c of children.get(t.tenantId) ?? []) visit(c);
  };
  visit(root);
  return ordered;
}

/** --tenant (a name or an id) as an id; "" stays "" (the caller's own tenant, no call made). */
export async function tenantIdOf(api: Api, nameOrId: string): Promise<string> {
  return nameOrId ? (await resolveTenant(api, nameOrId)).tenantId : '';
}

/** A tenant by id or display name, among the caller's own and its descendants ("" is the caller's). */
export async function resolveTenant(api: Api, nameOrId: string): Promise<Tenant> {
  if (nameOrId === '' || /^tnt_|^platform$/.test(nameOrId)) {
    const { tenant } = await orNotFound('tenant', nameOrId, api.tenants.getTenant({ tenantId: nameOrId }));
    if (tenant) return tenant;
  }
  const matches = (await listTenantTree(api)).filter((t) => t.displayName === nameOrId);
  return pickOne('tenant', nameOrId, matches, (t) => t.tenantId);
}

export async function listApiKeys(
  api: Api,
  request: { tenantId?: string; includeRevoked?: boolean },
): Promise<ApiKey[]> {
  return listAll(async (pageToken) => {
    const r = await api.apiKeys.listApiKeys({ pageSize: 1000, pageToken, ...request });
    return { items: r.apiKeys, nextPageToken: r.nextPageToken };
  });
}

/** A key by id, or by display name among the tenant's keys (revoked ones too). */
export async function resolveApiKey(api: Api, nameOrId: string, tenantId = ''): Promise<ApiKey> {
  if (nameOrId.startsWith('key_')) {
    const { apiKey } = await orNotFound('api key', nameOrId, api.apiKeys.getApiKey({ apiKeyId: nameOrId }));
    if (apiKey) return apiKey;
  }
  const all = await listApiKeys(api, { tenantId, includeRevoked: true });
  // A name reused after a revoke means the live key.
  const named = all.filter((k) => k.displayName === nameOrId);
  const matches = named.length > 1 ? named.filter((k) => !k.revokeTime) : named;
  return pickOne('api key', nameOrId, matches, (k) => k.apiKeyId);
}

export async function listImages(
  api: Api,
  request: { tenantId?: string; arch?: string; includeDeprecated?: boolean },
): Promise<Image[]> {
  return listAll(async (pageToken) => {
    const r = await api.images.listImages({ pageSize: 1000, pageToken, ...request });
    return { items: r.images, nextPageToken: r.nextPageToken };
  });
}

/** An image by its id (chosen at creation, so any shape) or, failing that, its display name. */
export async function resolveImage(api: Api, nameOrId: string, tenantId = ''): Promise<Image> {
  try {
    const { image } = await api.images.getImage({ imageId: nameOrId });
    if (image) return image;
  } catch (e) {
    const code = ConnectError.from(e).code;
    if (code !== Code.NotFound && code !== Code.InvalidArgument) throw e;
  }
  const matches = (await listImages(api, { tenantId, includeDeprecated: true })).filter(
    (i) => i.displayName === nameOrId,
  );
  return pickOne('image', nameOrId, matches, (i) => i.imageId);
}
