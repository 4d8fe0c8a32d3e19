// Phone network isolation: per-tenant bridges (the docker runtime makes them), the agent's firewall
// chains, egress metering and the optional phone proxy.
import type { Logger } from 'pino';
import type { NetworkIsolationConfig } from '../config.js';
import type { DockerRuntime } from '../runtime/index.js';
import type { CommandRunner } from './command.js';
import { PhoneFirewall } from './firewall.js';
import { firewalledPhones, NetworkIsolation } from './isolation.js';

export { type CommandResult, type CommandRunner, inNetns, runCommand } from './command.js';
export {
  BLOCKED_DESTINATIONS,
  EGRESS_CHAIN,
  type EgressRule,
  type FirewalledPhone,
  FORWARD_CHAIN,
  INPUT_CHAIN,
  PhoneFirewall,
} from './firewall.js';
export { firewalledPhones, NetworkIsolation, type NetworkIsolationOptions } from './isolation.js';
export { PhoneProxy, type PhoneProxyOptions, proxyCommand } from './proxy.js';

/**
 * Installs the firewall for the docker runtime's phones and keeps it (throws when iptables cannot be
 * set up: a host whose phones would run unisolated must not start quietly; CPHONE_NETWORK_ISOLATION=off
 * is the explicit way to run without).
 */
export async function startNetworkIsolation(
  config: NetworkIsolationConfig,
  runtime: DockerRuntime,
  logger: Logger,
  run?: CommandRunner,
): Promise<NetworkIsolation> {
  const firewall = new PhoneFirewall({
    bridgePrefix: runtime.config.bridgePrefix,
    ...(config.httpProxy !== undefined ? { proxy: config.httpProxy } : {}),
    ...(run !== undefined ? { run } : {}),
  });
  const isolation = new NetworkIsolation({
    firewall,
    phones: async () => firewalledPhones(await runtime.list()),
    pruneNetworks: () => runtime.pruneNetworks(),
    events: (signal) => runtime.events(signal),
    recheckMs: config.recheckMs,
    logger,
  });
  try {
    await isolation.start();
  } catch (err) {
    await isolation.close();
    throw new Error(
      `phone network isolation could not be set up (set CPHONE_NETWORK_ISOLATION=off to run phones without it): ${(err as Error).message}`,
      { cause: err },
    );
  }
  return isolation;
}
