import type { DeviceConnection, ServiceHandler } from '../adb/device-connection.js';
import type { ServiceSocket } from '../adb/service-socket.js';
import type { AndroidDevice } from '../android/android-device.js';

const encoder = new TextEncoder();

/**
 * `root:` / `unroot:` as adbd answers them (daemon/services.cpp, restart_root_service): on a
 * debuggable build it sets service.adb.root and restarts, so every adb connection drops; adb
 * reconnects and the new adbd (and its shells) run as root, or as shell again.
 */
export function rootService(device: AndroidDevice, root: boolean): ServiceHandler {
  return async (socket) => {
    const isRoot = device.properties.get('service.adb.root') === '1';
    let answer: string;
    let restart = false;
    if (root && device.properties.get('ro.debuggable') !== '1') {
      answer = 'adbd cannot run as root in production builds\n';
    } else if (root === isRoot) {
      answer = root ? 'adbd is already running as root\n' : 'adbd not running as root\n';
    } else {
      answer = root ? 'restarting adbd as root\n' : 'restarting adbd as non root\n';
      device.properties.set('service.adb.root', root ? '1' : '0');
      restart = true;
    }
    await socket.write(encoder.encode(answer));
    await socket.close();
    if (restart) setImmediate(() => device.events.emit('adbd-restart'));
  };
}

/** `OKAY`, or `FAIL` with a hex-length-prefixed message (adb's SendFail). */
const okay = (socket: ServiceSocket): Promise<void> => socket.write(encoder.encode('OKAY'));
const fail = (socket: ServiceSocket, message: string): Promise<void> =>
  socket.write(encoder.encode(`FAIL${protocolString(message)}`));
const protocolString = (text: string): string =>
  `${encoder.encode(text).byteLength.toString(16).padStart(4, '0')}${text}`;

let nextReversePort = 40_000;

/**
 * `reverse:forward[:norebind]:LOCAL;REMOTE`, `reverse:list-forward`, `reverse:killforward:LOCAL`,
 * `reverse:killforward-all`, answered as adbd's handle_forward_request does on the device (one
 * OKAY, no host-side second one). The rules are kept per transport and listed as adbd lists them;
 * nothing on the phone connects through them (no app here would).
 */
export function reverseService(connection: DeviceConnection, request: string): ServiceHandler | undefined {
  const forwards = connection.reverseForwards;
  return async (socket) => {
    if (request === 'list-forward') {
      const lines = [...forwards].map(
        ([local, remote]) => `${connection.transportName} ${local} ${remote}\n`,
      );
      await socket.write(encoder.encode(protocolString(lines.join(''))));
    } else if (request === 'killforward-all') {
      forwards.clear();
      await okay(socket);
    } else if (request.startsWith('killforward:')) {
      const local = request.slice('killforward:'.length);
      if (forwards.delete(local)) await okay(socket);
      else await fail(socket, `listener '${local}' not found`);
    } else if (request.startsWith('forward:')) {
      let spec = request.slice('forward:'.length);
      const norebind = spec.startsWith('norebind:');
      if (norebind) spec = spec.slice('norebind:'.length);
      const [local, remote, extra] = spec.split(';');
      if (
        !local ||
        !remote ||
        extra !== undefined ||
        !/^(tcp|localabstract|localreserved|localfilesystem|local):.+/.test(local)
      ) {
        await fail(socket, `bad forward: ${spec}`);
      } else if (norebind && forwards.has(local)) {
        await fail(socket, 'cannot rebind existing socket');
      } else {
        // tcp:0 asks for any free port; adbd names the one it bound.
        const resolved = local === 'tcp:0' ? `tcp:${nextReversePort++}` : local;
        forwards.set(resolved, remote);
        await okay(socket);
        if (local === 'tcp:0') await socket.write(encoder.encode(protocolString(resolved.slice(4))));
      }
    } else {
      await fail(socket, `unknown reverse request: ${request}`);
    }
    await socket.close();
  };
}
