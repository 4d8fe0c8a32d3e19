import type { ServiceRouter } from '../adb/device-connection.js';
import type { AndroidDevice } from '../android/android-device.js';
import type { Command } from '../android/shell/command.js';
import { reverseService, rootService } from './adbd-services.js';
import { parseShellService, shellService } from './shell-service.js';
import { syncService } from './sync-service.js';

/** Maps adb service names to handlers; anything unknown is refused with CLSE, as adbd does. */
export function createServiceRouter(
  device: AndroidDevice,
  commands: ReadonlyMap<string, Command>,
): ServiceRouter {
  return (service, connection) => {
    const shell = parseShellService(service);
    if (shell) return shellService(device, commands, shell);
    if (service === 'sync:') return syncService(device);
    if (service.startsWith('reboot:')) {
      return async (socket) => {
        await socket.close();
        setImmediate(() => device.reboot());
      };
    }
    if (service === 'root:' || service === 'unroot:') return rootService(device, service === 'root:');
    if (service.startsWith('reverse:')) return reverseService(connection, service.slice('reverse:'.length));
    if (service.startsWith('localabstract:')) {
      return device.abstractSockets.get(service.slice('localabstract:'.length))?.open();
    }
    return undefined;
  };
}
