// The wire types of cphone, generated from proto/cphone by `npm run proto`.
//
// cphone.api.v1 (the public API) is exported flat: it is what almost every caller uses.
// cphone.agent.v1 owns copies of the device types it shares with the API (DeviceSpec, PowerState,
// DeviceState, InputEvent, HostLoad ...), so it is exported as one namespace, `agentv1.DeviceSpec`
// beside `DeviceSpec`: each name says which protocol it belongs to, the generated names stay as
// buf made them, and adding a message to either package can never collide with the other.

// cphone.agent.v1: the host agent <-> control plane stream.
export * as agentv1 from './agent-v1.js';
// cphone.api.v1: the public API (resellers, CLI, web player); api.ts is also what browsers import.
export * from './api.js';
// api.v1 messages handed to an agent as their agent.v1 copies.
export { toAgentDeviceSpec, toAgentInputEvents } from './api-agent.js';
// Wire helpers: protobuf-es services on grpc-js, Connect-RPC on Hono, TLS material for the agent link.
// The device-spec contract shared by the control plane and the host agent: one validator, one set
// of limits (and the enums' spellings, from spellings.js below).
export {
  DEFAULT_SCREEN,
  DEVICE_SPEC_LIMITS,
  type DeviceSpecCheckOptions,
  deviceSpecViolation,
  type SpecViolation,
} from './device-spec.js';
export {
  addGrpcService,
  createGrpcClient,
  type GrpcClient,
  type GrpcHandler,
  type GrpcHandlers,
  grpcServiceDefinition,
} from './grpc.js';
// One string spelling per enum of the device contract, with its values in both packages.
export {
  GPU_MODES,
  type GpuModeName,
  POWER_STATES,
  type PowerStateName,
  RESTART_POLICIES,
  type RestartPolicyName,
  type Spelling,
} from './spellings.js';
export {
  ADB_TUNNEL_TOKEN_AUDIENCE,
  type AdbTunnelTokenClaims,
  rawPublicKey,
  STREAM_TOKEN_AUDIENCE,
  STREAM_TOKEN_ISSUER,
  type StreamRightsName,
  type StreamSigningKey,
  type StreamTokenClaims,
  StreamTokenError,
  type StreamVerifyKey,
  signAdbTunnelToken,
  signingKey,
  signStreamToken,
  verifyAdbTunnelToken,
  verifyStreamToken,
} from './stream-token.js';
export {
  createCertificateAuthority,
  type IssueOptions,
  issueServerCertificate,
  type KeptCertificates,
  keptCertificates,
  type PemKeyPair,
} from './tls.js';
