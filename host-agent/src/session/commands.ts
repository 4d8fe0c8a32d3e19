import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { agentv1 } from '@cphone/proto';
import type { CommandExecutor, CommandResultInit } from '../adb/index.js';
import type { AdbEndpoint } from '../runtime/index.js';

export interface CommandTarget {
  observed(deviceId: string): agentv1.ObservedDevice | undefined;
  adbEndpoint(deviceId: string): AdbEndpoint | undefined;
}

export interface RunCommandOptions {
  readonly executor: CommandExecutor | undefined;
  readonly devices: CommandTarget;
  /** Aborts when the stream the command came on ends. */
  readonly signal: AbortSignal;
  readonly now?: () => Date;
}

/**
 * Answers one Command: checks the deadline and the device, then runs the executor, racing the
 * deadline so the control plane always gets its answer by then. Never throws.
 */
export async function runCommand(
  command: agentv1.Command,
  options: RunCommandOptions,
): Promise<CommandResultInit> {
  const now = options.now ?? (() => new Date());
  const answer = (code: agentv1.CommandCode, message: string): CommandResultInit => ({
    commandId: command.commandId,
    code,
    message,
    finishedAt: timestampFromDate(now()),
  });
  const deadline = command.deadline ? timestampDate(command.deadline).getTime() : undefined;
  const remaining = deadline === undefined ? undefined : deadline - now().getTime();
  if (remaining !== undefined && remaining <= 0) {
    return answer(
      agentv1.CommandCode.DEADLINE_EXCEEDED,
      `deadline passed ${-remaining} ms before the command started`,
    );
  }
  if (command.kind.case === undefined)
    return answer(agentv1.CommandCode.INVALID_ARGUMENT, 'command has no kind');
  const device = options.devices.observed(command.deviceId);
  if (device === undefined)
    return answer(
      agentv1.CommandCode.NOT_FOUND,
      `device ${JSON.stringify(command.deviceId)} is not on this host`,
    );
  const adb = options.devices.adbEndpoint(command.deviceId);
  if (adb === undefined) {
    return answer(
      agentv1.CommandCode.FAILED_PRECONDITION,
      `device ${JSON.stringify(command.deviceId)} is ${agentv1.DeviceState[device.state]}, not RUNNING`,
    );
  }
  if (options.executor === undefined)
    return answer(agentv1.CommandCode.UNIMPLEMENTED, 'this agent runs no commands');
  const controller = new AbortController();
  const onEnd = () => controller.abort(options.signal.reason);
  options.signal.addEventListener('abort', onEnd, { once: true });
  let timer: NodeJS.Timeout | undefined;
  try {
    const expired = new Promise<CommandResultInit>((resolve) => {
      if (remaining === undefined) return;
      timer = setTimeout(() => {
        controller.abort(new Error('deadline exceeded'));
        resolve(answer(agentv1.CommandCode.DEADLINE_EXCEEDED, `deadline exceeded after ${remaining} ms`));
      }, remaining);
    });
    const run = options.executor
      .execute(command, { deviceId: command.deviceId, adb }, { signal: controller.signal })
      .catch((err: unknown) =>
        answer(agentv1.CommandCode.INTERNAL, err instanceof Error ? err.message : String(err)),
      );
    return await Promise.race([run, expired]);
  } finally {
    clearTimeout(timer);
    options.signal.removeEventListener('abort', onEnd);
  }
}
