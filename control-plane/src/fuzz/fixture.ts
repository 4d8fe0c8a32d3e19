// What a fuzz run needs on the plane it fuzzes: tenants at each level, keys of each role, hosts and
// devices, and the ids and page tokens that let inputs reach past "not found". Hosts for the agent
// stream are kept out of the API's pool, so API inputs cannot revoke or delete them mid-run.
import { createApiKey } from '../auth/api-keys.js';
import { PLATFORM_TENANT_ID } from '../auth/bootstrap.js';
import { enrollTestHost, insertTestDevice } from '../gateway/testing.js';
import type { ControlPlane } from '../server.js';
import type { AgentIdentity } from './agent-fuzz.js';
import type { Pool } from './messages.js';

export interface FuzzFixture {
  /** Bearer tokens: platform admin, ops, reseller admin, customer user. */
  tokens: string[];
  pool: Pool;
  /** Hosts whose credentials the agent fuzz may use. */
  agentHosts: AgentIdentity[];
  revokedHost: AgentIdentity;
}

const RESELLER = 'tnt_fuzz_reseller';
const CUSTOMER = 'tnt_fuzz_customer';
// Tenants the API inputs may update and delete; the ones holding the fuzz's own keys stay out of
// the pool, or one lucky DeleteTenant would leave the rest of the run unauthenticated.
const VICTIM_RESELLER = 'tnt_fuzz_victim_reseller';
const VICTIM_CUSTOMER = 'tnt_fuzz_victim_customer';

async function pageToken(plane: ControlPlane, token: string, path: string): Promise<string | undefined> {
  const response = await fetch(`${plane.httpUrl}/cphone.api.v1.${path}`, {
    method: 'POST',
    body: JSON.stringify({ pageSize: 1 }),
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
  });
  const body = (await response.json()) as { nextPageToken?: string };
  return body.nextPageToken || undefined;
}

export async function createFuzzFixture(plane: ControlPlane): Promise<FuzzFixture> {
  const { db } = plane.deps;
  const admin = plane.bootstrapToken;
  if (!admin) throw new Error('the fuzz needs a fresh plane (its bootstrap token)');
  const now = new Date();
  await db
    .insertInto('tenant')
    .values([
      {
        id: RESELLER,
        kind: 'reseller',
        parent_id: PLATFORM_TENANT_ID,
        display_name: 'fuzz reseller',
        update_time: now,
      },
      {
        id: CUSTOMER,
        kind: 'customer',
        parent_id: RESELLER,
        display_name: 'fuzz customer',
        update_time: now,
      },
      {
        id: VICTIM_RESELLER,
        kind: 'reseller',
        parent_id: PLATFORM_TENANT_ID,
        display_name: 'victim reseller',
        update_time: now,
      },
      {
        id: VICTIM_CUSTOMER,
        kind: 'customer',
        parent_id: VICTIM_RESELLER,
        display_name: 'victim customer',
        update_time: now,
      },
    ])
    .execute();
  const key = async (tenantId: string, role: 'ops' | 'tenant_admin' | 'tenant_user', name: string) =>
    createApiKey(db, { tenantId, role, displayName: name });
  const tokens = [
    admin,
    (await key(PLATFORM_TENANT_ID, 'ops', 'fuzz ops')).token,
    (await key(RESELLER, 'tenant_admin', 'fuzz reseller admin')).token,
    (await key(CUSTOMER, 'tenant_user', 'fuzz customer user')).token,
  ];
  // Keys the API inputs may revoke without cutting the fuzz off.
  const victims = [
    await key(CUSTOMER, 'tenant_user', 'victim a'),
    await key(VICTIM_CUSTOMER, 'tenant_user', 'victim b'),
  ];

  const apiHost = await enrollTestHost(db, { name: 'fuzz-api-host' });
  const devices = [];
  for (const tenantId of [CUSTOMER, CUSTOMER, CUSTOMER, VICTIM_CUSTOMER]) {
    const device = await insertTestDevice(db, {
      hostId: apiHost.hostId,
      tenantId,
      allocate: true,
      state: 'running',
    });
    devices.push(device.deviceId);
  }
  const agentHosts = [];
  for (let k = 0; k < 3; k++) agentHosts.push(await enrollTestHost(db, { name: `fuzz-agent-host-${k}` }));
  const revokedHost = await enrollTestHost(db, { name: 'fuzz-revoked-host', revoked: true });

  const pageTokens = [];
  for (const path of ['ApiKeyService/ListApiKeys', 'TenantService/ListTenants', 'HostService/ListHosts']) {
    const token = await pageToken(plane, admin, path);
    if (token) pageTokens.push(token);
  }
  return {
    tokens,
    pool: {
      ids: [
        PLATFORM_TENANT_ID,
        VICTIM_RESELLER,
        VICTIM_CUSTOMER,
        apiHost.hostId,
        'img_test',
        ...devices,
        ...victims.map((v) => v.id),
        'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      ],
      pageTokens,
    },
    agentHosts: agentHosts.map(({ hostId, credential }) => ({ hostId, credential })),
    revokedHost: { hostId: revokedHost.hostId, credential: revokedHost.credential },
  };
}
