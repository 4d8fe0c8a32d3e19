// cphone up: the embedded platform. It needs the repository (the control plane, the agent and the
// console run from their sources), so the command starts `cli/src/up-main.ts` of the checkout it
// belongs to in a child Node with tsx, and passes its exit code through. Ctrl-C reaches the child
// (same process group), which stops the platform cleanly.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { examples } from '../lib/command.js';
import { CliError } from '../lib/errors.js';

export function repoRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'cli', 'src', 'up-main.ts'))) return dir;
    dir = dirname(dir);
  }
  return undefined;
}

export function registerUp(program: Command): void {
  examples(
    program
      .command('up')
      .description(
        'start the embedded platform on this machine (control plane on PGlite, one agent, virtual phones, console)',
      )
      .option('--logs', 'print the JSON logs on stderr too (they always go to .data/logs/cphone.log)')
      .action(async (opts: { logs?: boolean }) => {
        const root = repoRoot();
        if (!root) throw new CliError('cphone up runs from a checkout of the cphone repository (npm start)');
        const child = spawn(
          process.execPath,
          ['--import', 'tsx', join(root, 'cli', 'src', 'up-main.ts'), ...(opts.logs ? ['--logs'] : [])],
          {
            cwd: process.cwd(),
            stdio: 'inherit',
          },
        );
        const ignore = () => {};
        process.on('SIGINT', ignore);
        process.on('SIGTERM', () => child.kill('SIGTERM'));
        const code = await new Promise<number>((resolve) =>
          child.on('exit', (c, s) => resolve(c ?? (s ? 128 + 15 : 1))),
        );
        process.off('SIGINT', ignore);
        if (code !== 0)
          throw Object.assign(new CliError(`cphone up exited with ${code}`, code), { silent: true });
      }),
    ['npm start            # the same', 'cphone up --logs'],
  );
}
