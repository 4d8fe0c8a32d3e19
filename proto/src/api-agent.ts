// cphone.api.v1 messages handed on to an agent as their cphone.agent.v1 copies. Each copy has the
// field numbers and types of its original (api-agent.test.ts checks every pair), so the binary
// encoding is the faithful bridge, and a field added to both later is carried without a change here.
import { type DescMessage, fromBinary, type MessageShape, toBinary } from '@bufbuild/protobuf';
import * as agentv1 from './agent-v1.js';
import { type DeviceSpec, DeviceSpecSchema } from './gen/cphone/api/v1/device_pb.js';
import { type InputEvent, InputEventSchema } from './gen/cphone/api/v1/input_pb.js';

function bridge<From extends DescMessage, To extends DescMessage>(
  from: From,
  to: To,
  message: MessageShape<From>,
): MessageShape<To> {
  // Fields the copy reserves (DeviceSpec.image_id) are dropped rather than carried as unknown.
  return fromBinary(to, toBinary(from, message), { readUnknownFields: false });
}

/** The spec an agent is sent: image_id stays behind (the agent is told image_ref). */
export function toAgentDeviceSpec(spec: DeviceSpec): agentv1.DeviceSpec {
  return bridge(DeviceSpecSchema, agentv1.DeviceSpecSchema, spec);
}

export function toAgentInputEvents(events: readonly InputEvent[]): agentv1.InputEvent[] {
  return events.map((event) => bridge(InputEventSchema, agentv1.InputEventSchema, event));
}
