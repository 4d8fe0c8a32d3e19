import type { DeviceSpec } from './types.js';

/** Labels every runtime-made object carries; the only way a restarted agent finds its phones. */
export const LABEL_MANAGED = 'dev.cphone.managed';
export const LABEL_DEVICE_ID = 'dev.cphone.device-id';
export const LABEL_TENANT_ID = 'dev.cphone.tenant-id';
export const LABEL_SPEC_REVISION = 'dev.cphone.spec-revision';
/** Partitions one engine between agents (or test runs) sharing it; list() only sees its own scope. */
export const LABEL_SCOPE = 'dev.cphone.scope';
export const RESERVED_LABEL_PREFIX = 'dev.cphone.';

export function deviceLabels(spec: DeviceSpec, scope: string): Record<string, string> {
  return {
    ...spec.labels,
    [LABEL_MANAGED]: 'true',
    [LABEL_SCOPE]: scope,
    [LABEL_DEVICE_ID]: spec.deviceId,
    [LABEL_TENANT_ID]: spec.tenantId,
    [LABEL_SPEC_REVISION]: String(spec.specRevision),
  };
}

export function volumeLabels(spec: DeviceSpec, scope: string): Record<string, string> {
  return {
    [LABEL_MANAGED]: 'true',
    [LABEL_SCOPE]: scope,
    [LABEL_DEVICE_ID]: spec.deviceId,
    [LABEL_TENANT_ID]: spec.tenantId,
  };
}

/** Engine filter (`label=` form) that selects exactly the phones of one scope. */
export function scopeFilters(scope: string): string[] {
  return [`${LABEL_MANAGED}=true`, `${LABEL_SCOPE}=${scope}`];
}
