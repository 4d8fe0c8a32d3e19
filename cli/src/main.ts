// The `cphone` command tree. commander (the most used and best kept of Node's CLI libraries: nested
// commands, help, typo suggestions, no dependencies of its own) parses; each noun's verbs live in
// commands/<noun>.ts and talk to the public Connect API only (lib/api.ts).
import { Command, CommanderError, Option } from 'commander';
import { registerAdb } from './commands/adb.js';
import { registerApiKeys } from './commands/api-keys.js';
import { registerArtifacts } from './commands/artifacts.js';
import { registerAudit } from './commands/audit.js';
import { registerCompletion } from './commands/completion.js';
import { registerConfig } from './commands/config.js';
import { registerDevices } from './commands/devices.js';
import { registerDocs } from './commands/docs.js';
import { registerHosts } from './commands/hosts.js';
import { registerImages } from './commands/images.js';
import { registerTenants } from './commands/tenants.js';
import { registerUp } from './commands/up.js';
import { registerUsage } from './commands/usage.js';
import { CLI_VERSION } from './lib/api.js';
import { EXIT, renderError } from './lib/errors.js';
import { FORMATS } from './lib/output.js';

export function createProgram(): Command {
  const program = new Command('cphone')
    .description('Operate cphone: hosts, phones, tenants and keys through the public API')
    .version(CLI_VERSION, '--version', 'print the version')
    .addOption(
      new Option('--context <name>', 'the context to use (see `cphone config get-contexts`)').env(
        'CPHONE_CONTEXT',
      ),
    )
    .option('--server <url>', 'the API URL, overriding the context (CPHONE_API_URL)')
    .option('--tenant <id>', "act on this tenant instead of the context's (yours by default)")
    .addOption(new Option('-o, --output <format>', 'output format').choices([...FORMATS]).default('table'))
    .option('-q, --quiet', 'print only what was asked for: no notes, no progress')
    .option('--no-color', 'never colour the output (NO_COLOR does the same)')
    .showSuggestionAfterError(true)
    .showHelpAfterError('(add --help for usage)')
    .configureHelp({ sortSubcommands: false, showGlobalOptions: true })
    // Usage errors exit 2 through main(), never process.exit inside commander (subcommands inherit it).
    .exitOverride();
  program.addHelpText(
    'after',
    `
Contexts live in $XDG_CONFIG_HOME/cphone/config.yaml; CPHONE_API_URL and CPHONE_API_KEY override them.
After \`npm start\` the CLI talks to the embedded platform with no set-up.

Exit codes: 0 ok, 1 failure, 2 usage, 3 INVALID_ARGUMENT, 4 NOT_FOUND, 5 PERMISSION_DENIED or
UNAUTHENTICATED, 6 ALREADY_EXISTS, 7 FAILED_PRECONDITION, 8 RESOURCE_EXHAUSTED, 9 UNAVAILABLE.

Examples:
  cphone hosts get
  cphone devices get -o wide --selector team=qa
  cphone devices create --image virtual-android-12 --count 3 --label team=qa
  cphone hosts drain rack3-node07 --mode migrate
  cphone adb connect "phone 1"
`,
  );
  registerHosts(program);
  registerDevices(program);
  registerTenants(program);
  registerUsage(program);
  registerImages(program);
  registerApiKeys(program);
  registerArtifacts(program);
  registerAudit(program);
  registerAdb(program);
  registerConfig(program);
  registerCompletion(program);
  registerDocs(program);
  registerUp(program);
  return program;
}

/** Runs one command line; resolves with the exit code (never exits the process itself). */
export async function main(argv: readonly string[]): Promise<number> {
  const program = createProgram();
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (
        error.code === 'commander.helpDisplayed' ||
        error.code === 'commander.version' ||
        error.code === 'commander.help'
      ) {
        return EXIT.ok;
      }
      // commander has printed the message (with a suggestion for a typo) already.
      return EXIT.usage;
    }
    const { message, exitCode } = renderError(error);
    process.stderr.write(`${message}\n`);
    return exitCode;
  }
}
