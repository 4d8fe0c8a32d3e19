// cphone.api.v1, the public API, alone: the generated messages and services and nothing that
// needs Node, so a browser bundle (the web console, the player) can import it.
export * from './gen/cphone/api/v1/adb_tunnel_pb.js';
export * from './gen/cphone/api/v1/api_key_pb.js';
export * from './gen/cphone/api/v1/api_key_service_pb.js';
export * from './gen/cphone/api/v1/artifact_pb.js';
export * from './gen/cphone/api/v1/artifact_service_pb.js';
export * from './gen/cphone/api/v1/audit_pb.js';
export * from './gen/cphone/api/v1/audit_service_pb.js';
export * from './gen/cphone/api/v1/billing_pb.js';
export * from './gen/cphone/api/v1/billing_service_pb.js';
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
export * from './gen/cphone/api/v1/user_pb.js';
export * from './gen/cphone/api/v1/user_service_pb.js';
export * from './gen/cphone/api/v1/webhook_pb.js';
export * from './gen/cphone/api/v1/webhook_service_pb.js';
// google.rpc.RetryInfo, the error detail a throttled call carries.
export { type RetryInfo, RetryInfoSchema } from './gen/google/rpc/error_details_pb.js';
