// Remote ADB to a cloud phone through the platform (see open-adb-tunnel.ts):
//
//   const tunnel = await openAdbTunnel({ transport, deviceId, ca });   // CreateAdbTunnel, then listen
//   // adb connect ${tunnel.address}   -> 127.0.0.1 -> wss://<agent>/adb -> the phone's adbd
//   await tunnel.close();
//
// The local port listens on 127.0.0.1 only. `ca` is the PEM of the CA behind the agent's stream
// endpoint certificate (production: the operator's; the embedded default runs the endpoint as plain
// ws on loopback and needs none).
export { type LocalAdbTunnel, type OpenAdbTunnelOptions, openAdbTunnel } from './open-adb-tunnel.js';
