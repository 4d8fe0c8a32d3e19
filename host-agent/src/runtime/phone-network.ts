// Which bridge network a phone joins. With tenant networks (the default) every tenant of a scope
// gets its own bridge, so phones of different tenants share no L2 segment and the agent's firewall
// (host-agent/src/network) can tell them apart by interface; otherwise all phones share one.
import { createHash } from 'node:crypto';
import type { DockerRuntimeConfig } from './docker-config.js';
import { LABEL_MANAGED, LABEL_SCOPE, LABEL_TENANT_ID } from './labels.js';

/** Set on networks the runtime made: `tenant` or `shared`. */
export const LABEL_NETWORK = 'dev.cphone.network';

/** Linux interface names are at most 15 bytes. */
const IFNAME_MAX = 15;

export interface PhoneNetworkName {
  /** The engine's network name. */
  readonly name: string;
  /** The bridge interface on the host. */
  readonly bridge: string;
}

function digest(text: string, length: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/** The network (and its bridge) for a phone of `tenantId`; the same for every phone of the tenant. */
export function phoneNetworkFor(config: DockerRuntimeConfig, tenantId: string): PhoneNetworkName {
  const room = IFNAME_MAX - config.bridgePrefix.length;
  if (!config.tenantNetworks) {
    return { name: config.network, bridge: config.bridgePrefix + digest(`${config.scope}\u0000`, room) };
  }
  const id = digest(`${config.scope}\u0000${tenantId}`, room);
  return { name: `${config.network}-${id.slice(0, 12)}`, bridge: config.bridgePrefix + id };
}

/** The create call for a phone network. */
export function phoneNetworkCreateOptions(
  config: DockerRuntimeConfig,
  tenantId: string,
): {
  Name: string;
  Driver: string;
  CheckDuplicate: boolean;
  EnableIPv6: boolean;
  Options: Record<string, string>;
  Labels: Record<string, string>;
} {
  const { name, bridge } = phoneNetworkFor(config, tenantId);
  return {
    Name: name,
    Driver: 'bridge',
    CheckDuplicate: true,
    EnableIPv6: false,
    // Docker and podman's compatible API both name the bridge interface from this option.
    Options: { ...config.networkOptions, 'com.docker.network.bridge.name': bridge },
    Labels: {
      [LABEL_MANAGED]: 'true',
      [LABEL_SCOPE]: config.scope,
      [LABEL_NETWORK]: config.tenantNetworks ? 'tenant' : 'shared',
      ...(config.tenantNetworks ? { [LABEL_TENANT_ID]: tenantId } : {}),
    },
  };
}
