// cphone config (contexts) and cphone login (a key from stdin into the current context).
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import type { Command } from 'commander';
import { createApi } from '../lib/api.js';
import { action, examples } from '../lib/command.js';
import {
  CONTEXT_FIELDS,
  type Context,
  configPath,
  DEFAULT_SERVER,
  readConfig,
  upsertContext,
  writeConfig,
} from '../lib/config.js';
import { UsageError } from '../lib/errors.js';
import { printDoc, renderTable } from '../lib/output.js';
import { readStdin } from '../lib/spec.js';

function safe(c: Context): Record<string, string> {
  const { key, ...rest } = c;
  return { ...rest, ...(key ? { key: 'REDACTED' } : {}) } as Record<string, string>;
}

export function registerConfig(program: Command): void {
  const config = program
    .command('config')
    .description('contexts: which API and key to use ($XDG_CONFIG_HOME/cphone/config.yaml)');

  examples(
    config
      .command('get-contexts')
      .description('list the contexts; * marks the current one')
      .action(
        action(async (ctx) => {
          const file = await readConfig(configPath());
          const current = file['current-context'];
          if (ctx.out.format === 'json' || ctx.out.format === 'yaml') {
            printDoc(ctx.out, { currentContext: current ?? '', contexts: file.contexts.map(safe) });
            return;
          }
          if (!file.contexts.length) {
            ctx.out.note(
              `No contexts in ${configPath()}: \`npm start\` adds "embedded", \`cphone config set-context\` adds one.`,
            );
            return;
          }
          ctx.out.write(
            renderTable(
              ctx.out,
              [
                { header: 'CURRENT', cell: (c: Context) => (c.name === current ? '*' : '') },
                { header: 'NAME', cell: (c) => c.name },
                { header: 'SERVER', cell: (c) => c.server || DEFAULT_SERVER },
                {
                  header: 'KEY',
                  cell: (c) => (c.key ? 'stored' : c['key-file'] ? `file ${c['key-file']}` : '-'),
                },
                { header: 'TENANT', cell: (c) => c.tenant ?? '-' },
              ],
              file.contexts,
            ),
          );
        }),
      ),
    ['cphone config get-contexts'],
  );

  config
    .command('current-context')
    .description('print the current context')
    .action(
      action(async (ctx) => {
        const file = await readConfig(configPath());
        if (!file['current-context'])
          throw new UsageError('no current context: cphone config use-context NAME');
        ctx.out.write(`${file['current-context']}\n`);
      }),
    );

  examples(
    config
      .command('use-context')
      .description('make a context the current one')
      .argument('<name>', 'context name')
      .action(
        action(async (ctx, [name]) => {
          const path = configPath();
          const file = await readConfig(path);
          if (!file.contexts.some((c) => c.name === name)) {
            throw new UsageError(
              `no context "${name}" in ${path} (contexts: ${file.contexts.map((c) => c.name).join(', ') || 'none'})`,
            );
          }
          file['current-context'] = name as string;
          await writeConfig(path, file);
          ctx.out.note(`Switched to context "${name}".`);
        }),
      ),
    ['cphone config use-context prod'],
  );

  const set = config
    .command('set-context')
    .description(
      'add a context or change its fields: --server, --tenant, --key-file, --ca-file (an empty value removes one)',
    )
    .argument('<name>', 'context name');
  // --server and --tenant are the global flags of the same names (commander gives them to the program).
  set.option('--key-file <path>', "a file holding the context's API key");
  set.option('--ca-file <path>', 'a PEM file of the CA that signed the API server certificate');
  set.option('--use', 'also make it the current context');
  examples(
    set.action(
      action<Record<string, string | boolean>>(async (ctx, [name], opts) => {
        const path = configPath();
        const file = await readConfig(path);
        const given: Record<(typeof CONTEXT_FIELDS)[number], unknown> = {
          server: ctx.globals.server,
          tenant: ctx.globals.tenant,
          'key-file': opts.keyFile,
          'ca-file': opts.caFile,
        };
        const fields: Partial<Record<keyof Context, string>> = {};
        for (const field of CONTEXT_FIELDS) {
          const value = given[field];
          if (typeof value === 'string') fields[field] = value;
        }
        if (fields.server) new URL(fields.server);
        const context = upsertContext(file, name as string, fields);
        if (!context.server) context.server = DEFAULT_SERVER;
        if (opts.use || !file['current-context']) file['current-context'] = context.name;
        await writeConfig(path, file);
        ctx.out.note(
          `Context "${context.name}" set${file['current-context'] === context.name ? ' (current)' : ''}.`,
        );
      }),
    ),
    [
      'cphone config set-context prod --server https://api.cphone.example --ca-file /etc/cphone/ca.pem --use',
      'cphone config set-context lab --key-file ~/.cphone/lab.key',
    ],
  );

  config
    .command('delete-context')
    .description('remove a context')
    .argument('<name>', 'context name')
    .action(
      action(async (ctx, [name]) => {
        const path = configPath();
        const file = await readConfig(path);
        const before = file.contexts.length;
        file.contexts = file.contexts.filter((c) => c.name !== name);
        if (file.contexts.length === before) throw new UsageError(`no context "${name}" in ${path}`);
        if (file['current-context'] === name) delete file['current-context'];
        await writeConfig(path, file);
        ctx.out.note(`Context "${name}" deleted.`);
      }),
    );

  examples(
    program
      .command('login')
      .description(
        'store an API key in a context (--context, else the current one, else "default"); the key is read from stdin, never from the command line',
      )
      .action(
        action(async (ctx) => {
          const path = configPath();
          const file = await readConfig(path);
          const name = ctx.globals.context ?? file['current-context'] ?? 'default';
          const key = process.stdin.isTTY ? await promptHidden('API key: ') : (await readStdin()).trim();
          if (!key)
            throw new UsageError('no key on stdin: echo "$KEY" | cphone login, or type it at the prompt');
          if (/\s/.test(key)) throw new UsageError('the key on stdin has spaces in it: give one key');
          const existing = file.contexts.find((c) => c.name === name);
          const server = (ctx.globals.server ?? existing?.server ?? DEFAULT_SERVER).replace(/\/+$/, '');
          // Check the key before keeping it: the caller's own tenant answers for any valid key.
          const api = createApi({ contextName: name, server, key, ca: undefined, tenant: undefined });
          const { tenant } = await api.tenants.getTenant({ tenantId: '' });
          upsertContext(file, name, { server, key, 'key-file': '' });
          file['current-context'] ??= name;
          await writeConfig(path, file);
          ctx.out.note(
            `Logged in to ${server} as tenant ${tenant?.displayName || tenant?.tenantId}; key stored in context "${name}" (${path}, mode 0600).`,
          );
        }),
      ),
    [
      'cat ~/cphone.key | cphone login --context prod --server https://api.cphone.example',
      'cphone login   # prompts, without echo',
    ],
  );
}

/** A prompt that does not echo what is typed (readline has no such mode; it writes to a muted stream). */
async function promptHidden(question: string): Promise<string> {
  process.stderr.write(question);
  const muted = new Writable({ write: (_c, _e, done) => done() });
  const rl = createInterface({ input: process.stdin, output: muted, terminal: true });
  try {
    return await new Promise<string>((resolve) => rl.question('', (answer) => resolve(answer.trim())));
  } finally {
    rl.close();
    process.stderr.write('\n');
  }
}
