// Shell completion for bash, zsh and fish. The scripts are thin: each asks `cphone __complete` for
// the candidates of the word being typed, so completion follows the command tree as it is (commands,
// flags, their choices) and offers live names where an argument is a host, device, tenant or
// context. commander has no completion of its own; this is the small part written by hand.
import type { Command, Option } from 'commander';
import { connectApi } from '../lib/api.js';
import { action, examples } from '../lib/command.js';
import { configPath, readConfig } from '../lib/config.js';
import { UsageError } from '../lib/errors.js';
import { listDevices, listHosts } from '../lib/resolve.js';

const SCRIPTS: Record<string, string> = {
  bash: `# cphone completion for bash: source <(cphone completion bash)
_cphone_complete() {
  local cur="\${COMP_WORDS[COMP_CWORD]}"
  local IFS=$'\\n'
  COMPREPLY=( $(compgen -W "$(cphone __complete -- "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)" -- "$cur") )
}
complete -o default -F _cphone_complete cphone
`,
  zsh: `#compdef cphone
# cphone completion for zsh: source <(cphone completion zsh)
_cphone_complete() {
  local -a candidates
  candidates=("\${(@f)$(cphone __complete -- "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  compadd -a candidates
}
compdef _cphone_complete cphone
`,
  fish: `# cphone completion for fish: cphone completion fish | source
complete -c cphone -f -a '(cphone __complete -- (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'
`,
};

function optionNames(command: Command): string[] {
  const all: Option[] = [];
  for (let c: Command | null = command; c; c = c.parent) all.push(...c.options);
  return all.flatMap((o) => [o.long, o.short].filter((n): n is string => Boolean(n)));
}

function findOption(command: Command, flag: string): Option | undefined {
  for (let c: Command | null = command; c; c = c.parent) {
    const o = c.options.find((x) => x.long === flag || x.short === flag);
    if (o) return o;
  }
  return undefined;
}

/** The candidates for the last word, given the words before it. */
export async function candidates(program: Command, words: string[]): Promise<string[]> {
  const partial = words[words.length - 1] ?? '';
  let command = program;
  let positional = 0;
  let valueFor: Option | undefined;
  for (const word of words.slice(0, -1)) {
    if (valueFor) {
      valueFor = undefined;
      continue;
    }
    if (word.startsWith('-')) {
      const o = findOption(command, word.split('=')[0] ?? word);
      if (o && (o.required || o.optional) && !word.includes('=')) valueFor = o;
      continue;
    }
    const sub = command.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (sub) {
      command = sub;
      positional = 0;
    } else positional++;
  }
  if (valueFor) {
    if (valueFor.argChoices) return valueFor.argChoices;
    if (valueFor.long === '--context') return (await readConfig(configPath())).contexts.map((c) => c.name);
    if (valueFor.long === '--host') return hostNames();
    return [];
  }
  if (partial.startsWith('-')) return optionNames(command);
  const subs = command.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
  if (subs.length) return subs.map((c) => c.name());
  const arg = command.registeredArguments[Math.min(positional, command.registeredArguments.length - 1)];
  const kind = arg?.name() ?? '';
  if (/^hosts?$/.test(kind)) return hostNames();
  if (/^devices?$/.test(kind)) return deviceNames();
  if (command.name() === 'use-context' || command.name() === 'delete-context') {
    return (await readConfig(configPath())).contexts.map((c) => c.name);
  }
  return [];
}

/** Live names, within 3 s or not at all (completion must never hang a shell). */
async function withDeadline<T>(work: Promise<T[]>): Promise<T[]> {
  const timeout = new Promise<T[]>((resolve) => setTimeout(() => resolve([]), 3000).unref());
  return Promise.race([work.catch(() => []), timeout]);
}

async function hostNames(): Promise<string[]> {
  return withDeadline(connectApi({}).then(async (api) => (await listHosts(api)).map((h) => h.name)));
}

/** Device names without spaces, and every id (a name with a space would split in the shell). */
async function deviceNames(): Promise<string[]> {
  return withDeadline(
    connectApi({}).then(async (api) =>
      (await listDevices(api, { includeDescendants: true })).flatMap((d) =>
        /\s/.test(d.displayName) || !d.displayName ? [d.deviceId] : [d.displayName, d.deviceId],
      ),
    ),
  );
}

export function registerCompletion(program: Command): void {
  examples(
    program
      .command('completion')
      .description('print a shell completion script (bash, zsh or fish)')
      .argument('<shell>', 'bash, zsh or fish')
      .action(
        action(async (ctx, [shell]) => {
          const script = SCRIPTS[shell as string];
          if (!script) throw new UsageError(`shell "${shell}" is not one of bash, zsh, fish`);
          ctx.out.write(script);
        }),
      ),
    [
      'source <(cphone completion bash)            # in ~/.bashrc',
      'cphone completion zsh > ~/.zfunc/_cphone   # a directory on $fpath',
      'cphone completion fish > ~/.config/fish/completions/cphone.fish',
    ],
  );
  program
    .command('__complete', { hidden: true })
    .description('candidates for the word being completed (used by the completion scripts)')
    .argument('[words...]')
    .allowUnknownOption()
    .action(async (words: string[]) => {
      const found = await candidates(program, words.length ? words : ['']);
      const partial = words[words.length - 1] ?? '';
      process.stdout.write(
        found
          .filter((c) => c.startsWith(partial))
          .map((c) => `${c}\n`)
          .join(''),
      );
    });
}
