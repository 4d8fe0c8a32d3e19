import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The agent's metrics, on a registry of its own so several agents (tests) can share a process. */
export function createMetrics(options: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  registry.setDefaultLabels({ service: 'host-agent' });
  // The event-loop-lag monitor samples 100 times a second by default: the bulk of an idle agent's CPU.
  if (options.defaultMetrics ?? true)
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  return {
    registry,
    sessionConnected: new Gauge({
      name: 'cphone_agent_session_connected',
      help: '1 while the stream to the control plane is welcomed, else 0',
      registers: [registry],
    }),
    sessionAttempts: new Counter({
      name: 'cphone_agent_session_attempts_total',
      help: 'Stream attempts by outcome (welcomed, failed, rejected)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    messagesReceived: new Counter({
      name: 'cphone_agent_messages_received_total',
      help: 'Control messages received by kind',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    messagesSent: new Counter({
      name: 'cphone_agent_messages_sent_total',
      help: 'Agent messages sent by kind',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    drains: new Counter({
      name: 'cphone_agent_drains_total',
      help: 'Drain notices received from the control plane',
      registers: [registry],
    }),
    commands: new Counter({
      name: 'cphone_agent_commands_total',
      help: 'Commands answered by kind and result code',
      labelNames: ['kind', 'code'] as const,
      registers: [registry],
    }),
    commandDuration: new Histogram({
      name: 'cphone_agent_command_duration_seconds',
      help: 'Command handling time by kind',
      labelNames: ['kind'] as const,
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
      registers: [registry],
    }),
    reconcileOperations: new Counter({
      name: 'cphone_agent_reconcile_operations_total',
      help: 'Runtime operations done by the reconciler, by operation and outcome',
      labelNames: ['operation', 'outcome'] as const,
      registers: [registry],
    }),
    deviceRestarts: new Counter({
      name: 'cphone_agent_device_restarts_total',
      help: 'Devices restarted after an exit, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    devices: new Gauge({
      name: 'cphone_agent_devices',
      help: 'Devices held by the agent, by observed state',
      labelNames: ['state'] as const,
      registers: [registry],
    }),
    desiredRevision: new Gauge({
      name: 'cphone_agent_desired_revision',
      help: 'Revision of the desired set last applied',
      registers: [registry],
    }),
    usagePending: new Gauge({
      name: 'cphone_agent_usage_pending_samples',
      help: 'Usage samples in the spool not yet acknowledged',
      registers: [registry],
    }),
    usageSequence: new Gauge({
      name: 'cphone_agent_usage_last_sequence',
      help: 'Sequence of the last usage sample written',
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
