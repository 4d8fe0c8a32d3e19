import { Adb, type AdbCredentialStore, AdbDaemonTransport } from '@yume-chan/adb';
import { raceAbort } from './abort.js';
import { AdbUnavailableError } from './errors.js';
import { connectAdbTcp } from './tcp-transport.js';

/** Where a device's adbd listens (the runtime's AdbEndpoint). */
export interface AdbEndpoint {
  readonly host: string;
  readonly port: number;
}

export const endpointKey = (endpoint: AdbEndpoint): string => `${endpoint.host}:${endpoint.port}`;

export interface ConnectOptions {
  credentialStore: AdbCredentialStore;
  /** TCP connect plus AUTH; a phone that does not trust the key never answers, so this bounds it. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

/** One authenticated ADB connection straight to a device's adbd (no adb server in between). */
export async function connectAdb(endpoint: AdbEndpoint, options: ConnectOptions): Promise<Adb> {
  const name = endpointKey(endpoint);
  options.signal?.throwIfAborted();
  let tcp: Awaited<ReturnType<typeof connectAdbTcp>>;
  try {
    tcp = await raceAbort(
      connectAdbTcp(endpoint.host, endpoint.port, { timeoutMs: options.timeoutMs }),
      options.signal,
    );
  } catch (error) {
    if (options.signal?.aborted) throw error;
    throw new AdbUnavailableError(name, `connect failed: ${(error as Error).message}`, { cause: error });
  }
  const deadline = AbortSignal.timeout(options.timeoutMs);
  const authenticating = AdbDaemonTransport.authenticate({
    serial: name,
    connection: tcp.connection,
    credentialStore: options.credentialStore,
  });
  // Abandoned on timeout, it rejects later when the socket closes; nobody is listening then.
  authenticating.catch(() => {});
  try {
    const transport = await raceAbort(
      authenticating,
      options.signal ? AbortSignal.any([options.signal, deadline]) : deadline,
    );
    return new Adb(transport);
  } catch (error) {
    tcp.close();
    if (options.signal?.aborted) throw error;
    if (deadline.aborted) {
      throw new AdbUnavailableError(
        name,
        `no CNXN within ${options.timeoutMs} ms (the phone may not trust the agent's ADB key yet)`,
      );
    }
    throw new AdbUnavailableError(name, `handshake failed: ${(error as Error).message}`, { cause: error });
  }
}
