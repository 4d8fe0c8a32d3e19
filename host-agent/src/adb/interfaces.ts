import type { MessageInitShape } from '@bufbuild/protobuf';
import type { agentv1 } from '@cphone/proto';
import type { AdbEndpoint } from './connect.js';

/** What `CommandExecutor.execute` answers: a CommandResult ready for `create(CommandResultSchema, …)`. */
export type CommandResultInit = MessageInitShape<typeof agentv1.CommandResultSchema>;

/** The device a command runs on, as the agent knows it. */
export interface ExecutorDevice {
  deviceId: string;
  adb: AdbEndpoint;
}

/** Runs one imperative Command from the control plane on one device; never throws. */
export interface CommandExecutor {
  execute(
    command: agentv1.Command,
    device: ExecutorDevice,
    options?: { signal?: AbortSignal },
  ): Promise<CommandResultInit>;
}

/** Tells when a (re)started phone finished booting. */
export interface BootProbe {
  /** Resolves once Android reports sys.boot_completed=1; rejects with the signal's reason on abort. */
  waitForBoot(endpoint: AdbEndpoint, signal: AbortSignal): Promise<void>;
}
