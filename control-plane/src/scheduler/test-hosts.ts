import type { HostInput, PlacementRequest } from './types.js';

/** Small builders for scheduler tests: a roomy ready arm64 host and a modest one-device request. */
export function host(id: string, overrides: Partial<HostInput> = {}): HostInput {
  return {
    id,
    name: `${id}.rack`,
    arch: 'arm64',
    state: 'ready',
    labels: { region: 'eu-west' },
    capacity: { vcpuMillicores: 8000, memoryMib: 16384, storageGib: 500, devices: 16 },
    ...overrides,
  };
}

export function request(overrides: Partial<PlacementRequest> = {}): PlacementRequest {
  return {
    count: 1,
    resources: { vcpuMillicores: 2000, memoryMib: 4096, storageGib: 32, devices: 1 },
    image: { id: 'android-14', arch: ['arm64'] },
    tenantId: 'tenant-a',
    ...overrides,
  };
}
