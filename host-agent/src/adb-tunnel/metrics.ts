// The tunnel endpoint's figures. No device or tenant label: a host's figures are what an operator
// compares across hosts; who used which tunnel is in the control plane's audit trail.
import { Counter, Gauge, type Registry } from 'prom-client';

export interface AdbTunnelMetrics {
  readonly open: Gauge;
  readonly bytes: Counter<'direction'>;
  readonly connections: Counter<'outcome'>;
}

export function createAdbTunnelMetrics(registry: Registry): AdbTunnelMetrics {
  const registers = [registry];
  return {
    open: new Gauge({
      name: 'cphone_agent_adb_tunnel_connections_open',
      help: 'ADB tunnel connections open now (client WebSocket to a phone’s adbd)',
      registers,
    }),
    bytes: new Counter({
      name: 'cphone_agent_adb_tunnel_bytes_total',
      help: 'Bytes carried through ADB tunnels, by direction (to_device, from_device)',
      labelNames: ['direction'] as const,
      registers,
    }),
    connections: new Counter({
      name: 'cphone_agent_adb_tunnel_connections_total',
      help: 'ADB tunnel connection attempts, by outcome (opened, or why refused)',
      labelNames: ['outcome'] as const,
      registers,
    }),
  };
}
