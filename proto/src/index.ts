// The wire types of cphone, generated from proto/cphone by `npm run proto`. The agent package reuses
// the api package's shared types (DeviceSpec, DeviceState, HostResources ...), so every name is unique.

// Wire helpers: protobuf-es services on grpc-js, Connect-RPC on Hono, TLS material for the agent link.
export { type ConnectHonoOptions, mountConnect } from './connect-hono.js';
// cphone.agent.v1: the host agent <-> control plane stream.
export * from './gen/cphone/agent/v1/agent_service_pb.js';
export * from './gen/cphone/agent/v1/command_pb.js';
export * from './gen/cphone/agent/v1/device_sync_pb.js';
export * from './gen/cphone/agent/v1/metering_pb.js';
export * from './gen/cphone/agent/v1/session_pb.js';
// cphone.api.v1: the public API (resellers, CLI, web player).
export * from './gen/cphone/api/v1/api_key_pb.js';
export * from './gen/cphone/api/v1/api_key_service_pb.js';
export * from './gen/cphone/api/v1/artifact_pb.js';
export * from './gen/cphone/api/v1/artifact_service_pb.js';
export * from './gen/cphone/api/v1/audit_pb.js';
export * from './gen/cphone/api/v1/audit_service_pb.js';
export * from './gen/cphone/api/v1/device_action_pb.js';
export * from './gen/cphone/api/v1/device_pb.js';
export * from './gen/cphone/api/v1/device_service_pb.js';
export * from './gen/cphone/api/v1/host_pb.js';
export * from './gen/cphone/api/v1/host_service_pb.js';
export * from './gen/cphone/api/v1/image_pb.js';
export * from './gen/cphone/api/v1/image_service_pb.js';
export * from './gen/cphone/api/v1/input_pb.js';
export * from './gen/cphone/api/v1/stream_session_pb.js';
export * from './gen/cphone/api/v1/tenant_pb.js';
export * from './gen/cphone/api/v1/tenant_service_pb.js';
export * from './gen/cphone/api/v1/usage_pb.js';
export * from './gen/cphone/api/v1/usage_service_pb.js';
export * from './gen/cphone/api/v1/webhook_pb.js';
export * from './gen/cphone/api/v1/webhook_service_pb.js';
export {
  addGrpcService,
  createGrpcClient,
  type GrpcClient,
  type GrpcHandler,
  type GrpcHandlers,
  grpcServiceDefinition,
} from './grpc.js';
export {
  createCertificateAuthority,
  type IssueOptions,
  issueServerCertificate,
  type PemKeyPair,
} from './tls.js';
