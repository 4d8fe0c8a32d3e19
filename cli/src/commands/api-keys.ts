// cphone api-keys: keys for the public API. get, create (the secret is printed once), revoke.
import { randomUUID } from 'node:crypto';
import { timestampFromMs, timestampMs } from '@bufbuild/protobuf/wkt';
import { type ApiKey, ApiKeySchema, CreateApiKeyRequestSchema, Role } from '@cphone/proto/api';
import { type Command, Option } from 'commander';
import { action, dryRun, durationMs, examples, requireYes } from '../lib/command.js';
import { UsageError } from '../lib/errors.js';
import { age, type Column, jsonOf, printDoc, printResources, shortDuration } from '../lib/output.js';
import { listApiKeys, resolveApiKey, tenantIdOf } from '../lib/resolve.js';
import { watchList } from '../lib/watch.js';

/** Roles as the flag takes them and tables show them. */
const ROLES = {
  'platform-admin': Role.PLATFORM_ADMIN,
  ops: Role.OPS,
  'tenant-admin': Role.TENANT_ADMIN,
  'tenant-user': Role.TENANT_USER,
} as const;

function roleText(role: Role): string {
  return Object.entries(ROLES).find(([, r]) => r === role)?.[0] ?? String(role);
}

function stateText(k: ApiKey, now = Date.now()): string {
  if (k.revokeTime) return 'Revoked';
  if (k.expireTime && timestampMs(k.expireTime) <= now) return 'Expired';
  return 'Active';
}

function expiresText(k: ApiKey, now = Date.now()): string {
  if (!k.expireTime) return 'never';
  // To the minute, so a key made with --expires 30d reads "in 30d", not "in 29d" a second later.
  const left = Math.round((timestampMs(k.expireTime) - now) / 60_000) * 60_000;
  return left > 0 ? `in ${shortDuration(left)}` : `${shortDuration(-left)} ago`;
}

const KEY_COLUMNS: Column<ApiKey>[] = [
  { header: 'NAME', cell: (k) => k.displayName },
  { header: 'ID', cell: (k) => k.apiKeyId },
  { header: 'ROLE', cell: (k) => roleText(k.role) },
  {
    header: 'STATE',
    cell: (k) => stateText(k),
    tint: (t, k, p) => (stateText(k) === 'Active' ? p.green(t) : p.red(t)),
  },
  { header: 'EXPIRES', cell: (k) => expiresText(k) },
  { header: 'LAST USED', cell: (k) => (k.lastUseTime ? `${age(k.lastUseTime)} ago` : 'never') },
  { header: 'AGE', cell: (k) => age(k.createTime) },
  { header: 'TENANT', cell: (k) => k.tenantId, wide: true },
];

/** `30d`, `12h`, `90m` from now, or a date (2026-01-31) or an RFC 3339 time. */
export function expiryMs(value: string, now = Date.now()): number {
  if (/^\d+(m|h|d|w|y)$/.test(value.trim())) return now + durationMs(value, '--expires');
  const at = Date.parse(value);
  if (/^\d{4}-\d\d-\d\d/.test(value) && Number.isFinite(at)) return at;
  throw new UsageError(`--expires "${value}" is not a duration (30d, 12h, 90m, 1y) or a date (2026-01-31)`);
}

export function registerApiKeys(program: Command): void {
  const keys = program
    .command('api-keys')
    .alias('api-key')
    .description('keys for the public API: list, create (the secret is shown once), revoke');

  examples(
    keys
      .command('get')
      .alias('list')
      .description("list a tenant's keys (yours, or --tenant's), or show the named ones")
      .argument('[keys...]', 'key names or ids')
      .option('-A, --all', 'also revoked and expired keys')
      .option('-w, --watch', 'keep printing changes (polls every 2 s)')
      .action(
        action<{ all?: boolean; watch?: boolean }>(async (ctx, [names], opts) => {
          const api = await ctx.api();
          const tenantId = await tenantIdOf(api, await ctx.tenant());
          const wanted = (names as string[]) ?? [];
          const fetch = async () => {
            if (wanted.length) return Promise.all(wanted.map((n) => resolveApiKey(api, n, tenantId)));
            return listApiKeys(api, { tenantId, includeRevoked: Boolean(opts.all) });
          };
          if (opts.watch) {
            await watchList(ctx, fetch, ApiKeySchema, KEY_COLUMNS, (k) => k.apiKeyId);
            return;
          }
          printResources(ctx.out, ApiKeySchema, await fetch(), KEY_COLUMNS, {
            single: wanted.length === 1,
            name: (k) => k.apiKeyId,
          });
        }),
      ),
    ['cphone api-keys get', 'cphone api-keys get --tenant acme -A -o wide', 'cphone api-keys get ci -o yaml'],
  );

  examples(
    keys
      .command('create')
      .description('create a key; its secret goes to stdout once (notes to stderr), so it can be piped')
      .requiredOption('--name <name>', 'display name, e.g. billing-sync')
      .addOption(
        new Option('--role <role>', 'what it may do').choices(Object.keys(ROLES)).makeOptionMandatory(),
      )
      .option('--expires <when>', 'when it stops working: 30d, 12h, 1y or a date (default: never)')
      .option('--request-id <key>', 'idempotency key (a retry is refused: the secret cannot be shown twice)')
      .option('--dry-run', 'check everything, create nothing')
      .action(
        action<{
          name: string;
          role: keyof typeof ROLES;
          expires?: string;
          requestId?: string;
          dryRun?: boolean;
        }>(async (ctx, _args, opts) => {
          const api = await ctx.api();
          const tenantId = await tenantIdOf(api, await ctx.tenant());
          const res = await api.apiKeys.createApiKey({
            requestId: opts.requestId ?? randomUUID(),
            tenantId,
            displayName: opts.name,
            role: ROLES[opts.role],
            ...(opts.expires ? { expireTime: timestampFromMs(expiryMs(opts.expires)) } : {}),
            ...dryRun(opts, CreateApiKeyRequestSchema),
          });
          const key = res.apiKey;
          if (ctx.out.format === 'json' || ctx.out.format === 'yaml') {
            printDoc(ctx.out, { apiKey: key ? jsonOf(ApiKeySchema, key) : null, secret: res.secret });
            return;
          }
          if (ctx.out.format === 'name') {
            ctx.out.write(`${key?.apiKeyId ?? ''}\n`);
            return;
          }
          if (opts.dryRun) {
            ctx.out.write(`api-key/${opts.name} can be created (dry run: nothing was created)\n`);
            return;
          }
          ctx.out.note(
            `api-key/${key?.displayName} created (${key?.apiKeyId}, role ${opts.role}, tenant ${key?.tenantId}, expires ${key ? expiresText(key) : '-'}).\nIts secret is below and is shown only now: keep it secret (use it as CPHONE_API_KEY or \`cphone login\`).`,
          );
          ctx.out.write(`${res.secret}\n`);
        }),
      ),
    [
      'cphone api-keys create --name ci --role tenant-user --expires 90d',
      'cphone api-keys create --name billing --role tenant-admin --tenant acme -q > acme.key',
      'cphone api-keys create --name ci --role tenant-user -o json',
    ],
  );

  examples(
    keys
      .command('revoke')
      .description('revoke keys at once (their next call is refused)')
      .argument('<keys...>', 'key names or ids')
      .option('--yes', 'confirm: whatever uses the key loses access')
      .action(
        action<{ yes?: boolean }>(async (ctx, [names], opts) => {
          requireYes(opts, `revoking ${(names as string[]).join(', ')}`);
          const api = await ctx.api();
          const tenantId = await tenantIdOf(api, await ctx.tenant());
          for (const n of names as string[]) {
            const key = await resolveApiKey(api, n, tenantId);
            const res = await api.apiKeys.revokeApiKey({ apiKeyId: key.apiKeyId });
            if (ctx.out.format === 'json' || ctx.out.format === 'yaml') {
              printResources(ctx.out, ApiKeySchema, res.apiKey ? [res.apiKey] : [], KEY_COLUMNS, {
                single: true,
                name: (k) => k.apiKeyId,
              });
            } else ctx.out.write(`api-key/${key.displayName} revoked\n`);
          }
        }),
      ),
    ['cphone api-keys revoke ci --yes'],
  );
}
