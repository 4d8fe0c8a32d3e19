// The reference, generated from the command tree itself (`cphone docs > cli/REFERENCE.md`), so it
// never drifts from --help: every command with its usage, description, options and examples.
import type { Command, Help } from 'commander';
import { action, EXAMPLES } from '../lib/command.js';

function visible(c: Command): Command[] {
  return c.commands.filter((s) => !(s as unknown as { _hidden?: boolean })._hidden);
}

function path(c: Command): string {
  const names: string[] = [];
  for (let x: Command | null = c; x; x = x.parent) names.unshift(x.name());
  return names.join(' ');
}

export function markdownReference(program: Command): string {
  const out: string[] = [
    '# cphone command reference',
    '',
    'Generated from the command tree by `cphone docs`; `cphone <command> --help` shows the same.',
    '',
  ];
  const globals = program.options.map((o) => `| \`${o.flags}\` | ${o.description} |`);
  out.push('## Global options', '', '| option | |', '|---|---|', ...globals, '');
  const visit = (c: Command, depth: number) => {
    const help: Help = c.createHelp();
    if (c !== program) {
      out.push(`${'#'.repeat(Math.min(depth + 1, 4))} ${path(c)}`, '', c.description(), '');
      out.push('```', help.commandUsage(c), '```', '');
      const args = help.visibleArguments(c);
      if (args.length) {
        out.push(...args.map((a) => `- \`${a.name()}\`${a.description ? `: ${a.description}` : ''}`), '');
      }
      const opts = help.visibleOptions(c).filter((o) => o.long !== '--help');
      if (opts.length) {
        out.push(
          '| option | |',
          '|---|---|',
          ...opts.map((o) => `| \`${o.flags}\` | ${help.optionDescription(o).replace(/\|/g, '\\|')} |`),
          '',
        );
      }
      const ex = EXAMPLES.get(c);
      if (ex?.length) out.push('Examples:', '', '```sh', ...ex, '```', '');
    }
    for (const s of visible(c)) visit(s, depth + 1);
  };
  visit(program, 0);
  return `${out.join('\n').trimEnd()}\n`;
}

export function registerDocs(program: Command): void {
  program
    .command('docs')
    .description('print the command reference as markdown (cli/REFERENCE.md is this output)')
    .action(
      action(async (ctx) => {
        ctx.out.write(markdownReference(program));
      }),
    );
}
