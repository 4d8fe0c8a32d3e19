import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AdbEndpoint } from '../runtime/index.js';

/** Tells when Android on a started phone has finished booting (sys.boot_completed=1). */
export interface BootProbe {
  /**
   * Resolves once the phone at `endpoint` has booted. Rejects if it cannot tell (the reconciler
   * treats that as a failed boot). Must settle promptly, with the abort reason, when `signal` aborts:
   * the reconciler aborts it at its boot timeout and when the phone is stopped or removed.
   */
  waitForBoot(endpoint: AdbEndpoint, signal: AbortSignal): Promise<void>;
}

/**
 * A probe that only waits for adbd's port to accept a connection. It stands in where no ADB
 * client is wired (it cannot see sys.boot_completed), so it says "booted" as soon as adbd listens.
 */
export function portOpenBootProbe(pollMs = 250): BootProbe {
  return {
    async waitForBoot(endpoint, signal) {
      for (;;) {
        signal.throwIfAborted();
        if (await canConnect(endpoint, signal)) return;
        await sleep(pollMs, undefined, { signal });
      }
    },
  };
}

function canConnect(endpoint: AdbEndpoint, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: endpoint.host, port: endpoint.port, signal });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
