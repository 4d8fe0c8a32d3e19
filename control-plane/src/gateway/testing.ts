// Test support: hosts and devices inserted straight into the store, for tests that drive the agent
// gateway with agents of their own (here and in tests/).
import type { agentv1 } from '@cphone/proto';
import type { Kysely } from 'kysely';
import { hashSecret } from '../auth/api-keys.js';
import { UnavailableError } from '../errors.js';
import { newHostRow } from '../hosts/host-row.js';
import { newId, newSecret } from '../ids.js';
import type { Database, DeviceStateName } from '../store/schema.js';
import { insertTenant } from '../store/tenants.js';
import type { AgentGateway, CommandKind, StreamRevocationInit } from './types.js';

export interface TestHostInput {
  hostId?: string;
  name?: string;
  arch?: string;
  labels?: Record<string, string>;
  vcpuMillicores?: number;
  memoryMib?: number;
  storageGib?: number;
  devices?: number;
  /** Insert the credential already revoked. */
  revoked?: boolean;
}

export interface TestHost {
  hostId: string;
  credentialId: string;
  /** `<credential id>.<secret>`, as an agent presents it in Hello. */
  credential: string;
}

/** Inserts a host and one credential for it, as enrollment would. */
export async function enrollTestHost(db: Kysely<Database>, input: TestHostInput = {}): Promise<TestHost> {
  const hostId = input.hostId ?? newId('host');
  const credentialId = newId('hcred');
  const secret = newSecret('cph');
  await db
    .insertInto('host')
    .values(
      newHostRow({
        id: hostId,
        name: input.name ?? hostId,
        arch: input.arch ?? 'arm64',
        labels: JSON.stringify(input.labels ?? {}),
        capacity_vcpu_millicores: input.vcpuMillicores ?? 64_000,
        capacity_memory_mib: input.memoryMib ?? 256 * 1024,
        capacity_storage_gib: input.storageGib ?? 4000,
        capacity_devices: input.devices ?? 64,
        desired_revision: 1,
      }),
    )
    .execute();
  await db
    .insertInto('host_credential')
    .values({
      id: credentialId,
      host_id: hostId,
      secret_hash: hashSecret(secret),
      revoke_time: input.revoked ? new Date() : null,
    })
    .execute();
  return { hostId, credentialId, credential: `${credentialId}.${secret}` };
}

export interface TestDeviceInput {
  hostId: string | null;
  state?: DeviceStateName;
  tenantId?: string;
  deviceId?: string;
  vcpuMillicores?: number;
  memoryMib?: number;
  storageGib?: number;
  desiredPower?: 'running' | 'stopped';
  /** Also add the device's resources to the host's allocated_* sums, as the plan applier does. */
  allocate?: boolean;
  /** When it was placed on its host (its placement event's time; default now). */
  placedAt?: Date;
}

/** Inserts a device (and its tenant and image when missing) on a host. */
export async function insertTestDevice(
  db: Kysely<Database>,
  input: TestDeviceInput,
): Promise<{ deviceId: string; tenantId: string }> {
  const tenantId = input.tenantId ?? 'tenant_test';
  const deviceId = input.deviceId ?? newId('dev');
  const now = new Date();
  await insertTenant(
    db,
    { id: tenantId, kind: 'customer', display_name: tenantId, parent_id: null, update_time: now },
    { ifAbsent: true },
  );
  await db
    .insertInto('image')
    .values({
      id: 'img_test',
      tenant_id: null,
      display_name: 'test image',
      image_ref: 'redroid/redroid:14.0.0-latest',
      android_version: '14',
      arches: JSON.stringify(['arm64']),
      required_labels: '{}',
      default_spec: '{}',
      min_vcpu_millicores: 1000,
      min_memory_mib: 1024,
      min_storage_gib: 4,
      update_time: now,
    })
    .onConflict((c) => c.column('id').doNothing())
    .execute();
  const vcpu = input.vcpuMillicores ?? 2000;
  const memory = input.memoryMib ?? 4096;
  const storage = input.storageGib ?? 16;
  await db
    .insertInto('device')
    .values({
      id: deviceId,
      tenant_id: tenantId,
      display_name: deviceId,
      labels: '{}',
      image_id: 'img_test',
      image_ref: 'redroid/redroid:14.0.0-latest',
      vcpu_millicores: vcpu,
      memory_mib: memory,
      storage_gib: storage,
      spec_revision: 1,
      desired_power: input.desiredPower ?? 'running',
      restart_policy: 'always',
      restart_generation: 0,
      state: input.state ?? 'scheduled',
      state_reason: '',
      state_message: '',
      host_id: input.hostId,
      observed_spec_revision: 0,
      adb_endpoint: '',
      update_time: now,
      delete_time: null,
    })
    .execute();
  // As the plan applier records a placement: usage intake reads where a device was placed from it.
  if (input.hostId) {
    await db
      .insertInto('device_event')
      .values({
        device_id: deviceId,
        tenant_id: tenantId,
        from_state: null,
        to_state: 'scheduled',
        reason: 'SCHEDULED',
        message: `placed on host ${input.hostId}`,
        host_id: input.hostId,
        create_time: input.placedAt ?? now,
      })
      .execute();
  }
  if (input.allocate && input.hostId) {
    await db
      .updateTable('host')
      .set((eb) => ({
        allocated_vcpu_millicores: eb('allocated_vcpu_millicores', '+', vcpu),
        allocated_memory_mib: eb('allocated_memory_mib', '+', memory),
        allocated_storage_gib: eb('allocated_storage_gib', '+', storage),
        allocated_devices: eb('allocated_devices', '+', 1),
      }))
      .where('id', '=', input.hostId)
      .execute();
  }
  return { deviceId, tenantId };
}

/** An AgentGateway for tests that build their own Deps: records calls, answers commands with `reply`. */
export function createStubGateway(
  reply: (hostId: string, deviceId: string, kind: CommandKind) => Promise<agentv1.CommandResult> = (hostId) =>
    Promise.reject(new UnavailableError(`host ${JSON.stringify(hostId)} is not connected`)),
): AgentGateway & {
  desired: string[];
  drains: { hostId: string; reason: string }[];
  revocations: (StreamRevocationInit & { hostId: string })[];
} {
  const desired: string[] = [];
  const revocations: (StreamRevocationInit & { hostId: string })[] = [];
  const drains: { hostId: string; reason: string }[] = [];
  return {
    desired,
    drains,
    revocations,
    port: 0,
    caPem: undefined,
    desiredChanged: (hostId) => void desired.push(hostId),
    command: (hostId, deviceId, kind) => reply(hostId, deviceId, kind),
    drain: (hostId, reason) => {
      drains.push({ hostId, reason });
      return false;
    },
    disconnect: () => false,
    connectedHosts: () => [],
    revokeStreams: (hostId, revocation) => void revocations.push({ hostId, ...revocation }),
    streamKeysChanged: () => {},
    close: async () => {},
  };
}
