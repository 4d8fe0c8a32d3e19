// How the agent runs the host's firewall tools. Injectable, so tests run the same code against a
// network namespace (`ip netns exec NS iptables …`) instead of the host's own tables.
import { spawn } from 'node:child_process';

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `argv` (argv[0] is the program), optionally feeding `input` on stdin. Never throws for a non-zero exit. */
export type CommandRunner = (argv: readonly string[], input?: string) => Promise<CommandResult>;

export const runCommand: CommandRunner = (argv, input) =>
  new Promise((resolve, reject) => {
    const [program, ...args] = argv;
    if (program === undefined) {
      reject(new Error('empty command'));
      return;
    }
    const child = spawn(program, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    // A program that exits without reading its input makes the write fail (EPIPE): its exit code tells.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
  });

/** A runner that executes every command inside the named network namespace. */
export function inNetns(name: string, run: CommandRunner = runCommand): CommandRunner {
  return (argv, input) => run(['ip', 'netns', 'exec', name, ...argv], input);
}

/** Runs and throws an error naming the command when it exits non-zero. */
export async function mustRun(run: CommandRunner, argv: readonly string[], input?: string): Promise<string> {
  const result = await run(argv, input);
  if (result.code !== 0) {
    throw new Error(
      `${argv.join(' ')} exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`,
    );
  }
  return result.stdout;
}
