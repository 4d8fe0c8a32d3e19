// Names people type for hosts and devices: an id (host_…, dev_…) or a name. A name is looked up in
// the list; two resources with the same name are refused rather than guessed between.
import { Code, ConnectError } from '@connectrpc/connect';
import type { Device, Host } from '@cphone/proto/api';
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

function ambiguous(kind: string, name: string, ids: string[]): CliError {
  return new CliError(
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
  if (matches.length === 1 && matches[0]) return matches[0];
  if (matches.length === 0) throw notFound('host', nameOrId);
  throw ambiguous(
    'host',
    nameOrId,
    matches.map((h) => h.hostId),
  );
}

export async function resolveDevice(api: Api, nameOrId: string, tenantId = ''): Promise<Device> {
  if (nameOrId.startsWith('dev_')) {
    try {
      const { device } = await api.devices.getDevice({ deviceId: nameOrId });
      if (device) return device;
    } catch (e) {
      if (ConnectError.from(e).code !== Code.NotFound) throw e;
      throw notFound('device', nameOrId);
    }
  }
  const matches = (await listDevices(api, { tenantId, includeDescendants: true })).filter(
    (d) => d.displayName === nameOrId,
  );
  if (matches.length === 1 && matches[0]) return matches[0];
  if (matches.length === 0) throw notFound('device', nameOrId);
  throw ambiguous(
    'device',
    nameOrId,
    matches.map((d) => d.deviceId),
  );
}
