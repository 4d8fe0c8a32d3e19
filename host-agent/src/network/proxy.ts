// The optional HTTP proxy for phones (CPHONE_PHONE_HTTP_PROXY): Android's global http_proxy setting,
// written over ADB each time a phone comes up running (Redroid has no boot argument for it). The
// setting lives in the phone's /data: unsetting the option later leaves it in place until cleared
// (`settings put global http_proxy :0`, e.g. through a shell command). The firewall
// lets phones reach the proxy's address and port even in a private range; traffic to it counts as
// egress. Apps that ignore the system proxy still go straight to the internet: the proxy is a
// convenience (e.g. an egress IP of the customer's choosing), not a control.
import { agentv1 } from '@cphone/proto';
import type { Logger } from 'pino';
import type { AdbEndpoint } from '../runtime/index.js';

export interface PhoneProxyOptions {
  readonly proxy: { readonly host: string; readonly port: number };
  /** The phone's ADB endpoint while it runs. */
  readonly endpoint: (deviceId: string) => AdbEndpoint | undefined;
  /** Runs a shell command on the phone; resolves with its exit code. */
  readonly shell: (endpoint: AdbEndpoint, command: string) => Promise<{ exitCode: number }>;
  readonly logger: Logger;
}

export function proxyCommand(proxy: { host: string; port: number }): string {
  return `settings put global http_proxy ${proxy.host}:${proxy.port}`;
}

/** Writes the proxy setting into every phone that reaches RUNNING. */
export class PhoneProxy {
  readonly #o: PhoneProxyOptions;
  readonly #running = new Set<string>();

  constructor(options: PhoneProxyOptions) {
    this.#o = options;
  }

  /** Feed every observed status; returns the write when this status started one (for tests). */
  deviceChanged(device: agentv1.ObservedDevice): Promise<boolean> | undefined {
    if (device.state !== agentv1.DeviceState.RUNNING) {
      this.#running.delete(device.deviceId);
      return undefined;
    }
    if (this.#running.has(device.deviceId)) return undefined;
    this.#running.add(device.deviceId);
    const endpoint = this.#o.endpoint(device.deviceId);
    if (endpoint === undefined) return undefined;
    const command = proxyCommand(this.#o.proxy);
    return this.#o.shell(endpoint, command).then(
      (r) => {
        if (r.exitCode === 0) return true;
        this.#o.logger.warn(
          { deviceId: device.deviceId, exitCode: r.exitCode },
          'setting the phone proxy failed',
        );
        return false;
      },
      (err: unknown) => {
        this.#o.logger.warn({ err, deviceId: device.deviceId }, 'setting the phone proxy failed');
        return false;
      },
    );
  }
}
