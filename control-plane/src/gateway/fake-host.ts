// Test support: a host agent that converges at once. It reports each desired device in its desired
// power (RUNNING or STOPPED) and each removed one DELETED, over the real agent stream, so tests of
// drains and placements see hosts behave like real ones without containers.
import { type agentv1, DeviceState, type GrpcClient, PowerState } from '@cphone/proto';
import { TestAgent } from './test-agent.js';

export class FakeHost {
  readonly actual = new Map<string, DeviceState>();
  readonly removed: string[] = [];
  readonly agent: TestAgent;
  /** Devices that do not converge (stay as they are) until released: a slow phone. */
  readonly stuck = new Set<string>();

  constructor(
    client: GrpcClient<typeof agentv1.AgentService>,
    readonly hostId: string,
    credential: string,
    slots: number,
  ) {
    this.agent = TestAgent.connect(client, {
      hostId,
      credential,
      arch: 'arm64',
      runtimeKind: 'sim',
      capacity: {
        vcpuMillicores: 64_000n,
        memoryBytes: 128n << 30n,
        storageBytes: 1000n << 30n,
        devices: slots,
      },
    });
    this.agent.call.on('data', (m: agentv1.ControlMessage) => this.#on(m));
    this.agent.startHeartbeats(1000);
  }

  #last = new Map<string, agentv1.DesiredDevice>();

  #on(m: agentv1.ControlMessage): void {
    const body = m.body;
    if (body.case === 'desiredDevices') {
      const wanted = new Set(body.value.devices.map((d) => d.deviceId));
      for (const id of [...this.actual.keys()]) if (!wanted.has(id)) this.#remove(id);
      for (const d of body.value.devices) this.#converge(d);
    } else if (body.case === 'deviceUpsert' && body.value.device) this.#converge(body.value.device);
    else if (body.case === 'deviceRemove') this.#remove(body.value.deviceId);
  }

  #converge(d: agentv1.DesiredDevice): void {
    this.#last.set(d.deviceId, d);
    if (this.stuck.has(d.deviceId)) return;
    const to = d.powerState === PowerState.STOPPED ? DeviceState.STOPPED : DeviceState.RUNNING;
    if (this.actual.get(d.deviceId) === to) return;
    this.actual.set(d.deviceId, to);
    this.report(d.deviceId, to);
  }

  /** Lets a stuck device converge to what it was last told. */
  release(deviceId: string): void {
    this.stuck.delete(deviceId);
    const last = this.#last.get(deviceId);
    if (last) this.#converge(last);
  }

  #remove(id: string): void {
    this.#last.delete(id);
    if (!this.actual.delete(id)) return;
    this.removed.push(id);
    this.report(id, DeviceState.DELETED);
  }

  report(deviceId: string, state: DeviceState): void {
    this.agent.send({ case: 'deviceStatus', value: { device: { deviceId, state, specRevision: 1n } } });
  }
}
