// One string spelling per enum of the device contract, and its proto values in both packages, in
// one table each: the control plane's rows, the agent's terms and the wire all use these names.
import * as agentv1 from './agent-v1.js';
import { GpuMode, PowerState, RestartPolicy } from './gen/cphone/api/v1/device_pb.js';

export type RestartPolicyName = 'always' | 'on_failure' | 'never';
export type PowerStateName = 'running' | 'stopped';
export type GpuModeName = 'guest' | 'host' | 'auto';

/** The names of one enum, and its values in cphone.agent.v1 and cphone.api.v1 (the same numbers). */
export interface Spelling<Name extends string, Agent extends number, Api extends number> {
  /** Every name, in proto order. */
  readonly names: readonly Name[];
  /** The name of a value of either package: UNSPECIFIED gives the proto's default, an unknown number undefined. */
  name(value: Agent | Api): Name | undefined;
  agent(name: Name): Agent;
  api(name: Name): Api;
}

function spelling<Name extends string, Agent extends number, Api extends number>(
  unspecified: Name,
  table: Record<Name, readonly [agent: Agent, api: Api]>,
): Spelling<Name, Agent, Api> {
  const entries = Object.entries(table) as [Name, readonly [Agent, Api]][];
  const byNumber = new Map<number, Name>(entries.map(([name, [agent]]) => [agent, name]));
  byNumber.set(0, unspecified);
  return Object.freeze({
    names: Object.freeze(entries.map(([name]) => name)),
    name: (value: Agent | Api) => byNumber.get(value),
    agent: (name: Name) => table[name][0],
    api: (name: Name) => table[name][1],
  });
}

export const RESTART_POLICIES = spelling<RestartPolicyName, agentv1.RestartPolicy, RestartPolicy>('always', {
  always: [agentv1.RestartPolicy.ALWAYS, RestartPolicy.ALWAYS],
  on_failure: [agentv1.RestartPolicy.ON_FAILURE, RestartPolicy.ON_FAILURE],
  never: [agentv1.RestartPolicy.NEVER, RestartPolicy.NEVER],
});

export const POWER_STATES = spelling<PowerStateName, agentv1.PowerState, PowerState>('running', {
  running: [agentv1.PowerState.RUNNING, PowerState.RUNNING],
  stopped: [agentv1.PowerState.STOPPED, PowerState.STOPPED],
});

/** UNSPECIFIED is `guest` here; the control plane first resolves it to the image's default. */
export const GPU_MODES = spelling<GpuModeName, agentv1.GpuMode, GpuMode>('guest', {
  guest: [agentv1.GpuMode.GUEST, GpuMode.GUEST],
  host: [agentv1.GpuMode.HOST, GpuMode.HOST],
  auto: [agentv1.GpuMode.AUTO, GpuMode.AUTO],
});
