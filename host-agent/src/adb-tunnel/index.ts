export {
  type AdbTunnelReportInit,
  AdbTunnels,
  type AdbTunnelsOptions,
  type TunnelMatch,
  type TunnelPhones,
  tunnelTokenOf,
} from './adb-tunnels.js';
export { type BridgeOptions, type BridgeSide, bridgeWebSocket } from './bridge.js';
