// cphone.agent.v1, the host agent <-> control plane stream, as one namespace: the package index
// exports it as `agentv1`, so its device types (DeviceSpec, PowerState ...) live beside their
// cphone.api.v1 namesakes without renaming either.
export * from './gen/cphone/agent/v1/adb_tunnel_pb.js';
export * from './gen/cphone/agent/v1/agent_service_pb.js';
export * from './gen/cphone/agent/v1/command_pb.js';
export * from './gen/cphone/agent/v1/device_pb.js';
export * from './gen/cphone/agent/v1/device_sync_pb.js';
export * from './gen/cphone/agent/v1/host_pb.js';
export * from './gen/cphone/agent/v1/input_pb.js';
export * from './gen/cphone/agent/v1/metering_pb.js';
export * from './gen/cphone/agent/v1/session_pb.js';
