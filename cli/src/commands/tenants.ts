// cphone tenants: the tree platform -> reseller -> customer. get, describe, create, update, delete;
// quotas (limits and usage) are their own noun, registered here too (commands/quotas.ts).
import { randomUUID } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import {
  CreateTenantRequestSchema,
  QuotaUsageSchema,
  type Tenant,
  TenantKind,
  TenantSchema,
  TenantState,
  UpdateTenantRequestSchema,
} from '@cphone/proto/api';
import { type Command, Option } from 'commander';
import { action, type Ctx, collect, dryRun, examples, requireYes } from '../lib/command.js';
import { UsageError } from '../lib/errors.js';
import {
  age,
  type Column,
  editLabels,
  enumText,
  jsonOf,
  labelsFrom,
  labelsMatch,
  labelsText,
  printDoc,
  printResources,
  renderTable,
} from '../lib/output.js';
import { listTenantTree, resolveTenant, tenantIdOf } from '../lib/resolve.js';
import { watchList } from '../lib/watch.js';
import { registerQuotas, usageColumns, usagePath } from './quotas.js';

const KINDS = { reseller: TenantKind.RESELLER, customer: TenantKind.CUSTOMER } as const;
const STATES = { active: TenantState.ACTIVE, suspended: TenantState.SUSPENDED } as const;

/** Columns; the parent is shown by name when `names` knows it (a tenant above the caller's is not). */
function tenantColumns(names: ReadonlyMap<string, string>): Column<Tenant>[] {
  return [
    { header: 'NAME', cell: (t) => t.displayName },
    { header: 'ID', cell: (t) => t.tenantId },
    { header: 'KIND', cell: (t) => enumText(TenantKind, t.kind) },
    {
      header: 'STATE',
      cell: (t) => enumText(TenantState, t.state),
      tint: (text, t, p) => (t.state === TenantState.SUSPENDED ? p.red(text) : p.green(text)),
    },
    {
      header: 'PARENT',
      cell: (t) => (t.parentTenantId ? (names.get(t.parentTenantId) ?? t.parentTenantId) : '-'),
    },
    { header: 'AGE', cell: (t) => age(t.createTime) },
    { header: 'LABELS', cell: (t) => labelsText(t.labels), wide: true },
  ];
}

async function describeTenant(ctx: Ctx, nameOrId: string): Promise<void> {
  const api = await ctx.api();
  const tenant = await resolveTenant(api, nameOrId);
  // Each QuotaUsage carries the tenant's limits, so no separate GetQuota.
  const [path, tree] = await Promise.all([usagePath(api, tenant), listTenantTree(api, tenant.tenantId)]);
  const children = tree.filter((t) => t.parentTenantId === tenant.tenantId);
  if (ctx.out.format === 'json' || ctx.out.format === 'yaml') {
    printDoc(ctx.out, {
      tenant: jsonOf(TenantSchema, tenant),
      children: children.map((c) => c.tenantId),
      quotaUsage: path.usage.map((u) => jsonOf(QuotaUsageSchema, u)),
    });
    return;
  }
  const names = new Map(path.tenants.map((t) => [t.tenantId, t.displayName]));
  const parent = path.tenants[1];
  const lines = [
    `Name:      ${tenant.displayName}`,
    `ID:        ${tenant.tenantId}`,
    `Kind:      ${enumText(TenantKind, tenant.kind)}`,
    `State:     ${enumText(TenantState, tenant.state)}`,
    `Parent:    ${parent ? `${parent.displayName} (${parent.tenantId})` : tenant.parentTenantId || '-'}`,
    `Labels:    ${labelsText(tenant.labels)}`,
    `Created:   ${age(tenant.createTime)} ago`,
    `Children:  ${children.length ? children.map((c) => c.displayName).join(', ') : '<none>'}`,
    'Quota (used/limit of this tenant and of each ancestor; - is no limit of its own):',
  ];
  ctx.out.write(`${lines.join('\n')}\n`);
  const width = ctx.out.width ? ctx.out.width - 2 : undefined;
  const table = renderTable({ ...ctx.out, format: 'table', width }, usageColumns(names), path.usage);
  ctx.out.write(
    table
      .split('\n')
      .map((l) => (l ? `  ${l}` : l))
      .join('\n'),
  );
}

export function registerTenants(program: Command): void {
  const tenants = program
    .command('tenants')
    .alias('tenant')
    .description(
      'the tenant tree (platform -> reseller -> customer): list, inspect, create, suspend, delete',
    );

  examples(
    tenants
      .command('get')
      .alias('list')
      .description('list your tenant and every tenant below it, or show the named ones')
      .argument('[tenants...]', 'tenant names or ids')
      .addOption(
        new Option('--kind <kind>', 'only tenants of this kind').choices([
          'platform',
          'reseller',
          'customer',
        ]),
      )
      .option('-l, --selector <k=v>', 'only tenants with these labels (repeatable, comma-separated)', collect)
      .option('-w, --watch', 'keep printing changes (polls every 2 s)')
      .action(
        action<{ kind?: string; selector?: string[]; watch?: boolean }>(async (ctx, [names], opts) => {
          const api = await ctx.api();
          const wanted = (names as string[]) ?? [];
          const selector = labelsFrom(opts.selector);
          const known = new Map<string, string>();
          const fetch = async () => {
            const tree = await listTenantTree(api, await tenantIdOf(api, await ctx.tenant()));
            for (const t of tree) known.set(t.tenantId, t.displayName);
            if (wanted.length) return Promise.all(wanted.map((n) => resolveTenant(api, n)));
            return tree.filter(
              (t) =>
                (!opts.kind || t.kind === TenantKind[opts.kind.toUpperCase() as 'RESELLER']) &&
                labelsMatch(t.labels, selector),
            );
          };
          const columns = tenantColumns(known);
          if (opts.watch) {
            await watchList(ctx, fetch, TenantSchema, columns, (t) => t.tenantId);
            return;
          }
          printResources(ctx.out, TenantSchema, await fetch(), columns, {
            single: wanted.length === 1,
            name: (t) => t.tenantId,
          });
        }),
      ),
    [
      'cphone tenants get',
      'cphone tenants get --kind customer -l tier=gold -o wide',
      'cphone tenants get acme -o yaml',
      'cphone tenants get -w',
    ],
  );

  examples(
    tenants
      .command('describe')
      .description('a tenant with its children, quota, and usage against the limits up to yours')
      .argument('<tenant>', 'tenant name or id')
      .action(action(async (ctx, [name]) => describeTenant(ctx, name as string))),
    ['cphone tenants describe acme', 'cphone tenants describe shop -o json'],
  );

  examples(
    tenants
      .command('create')
      .description('create a reseller (platform admins only) or a customer')
      .requiredOption('--name <name>', 'display name')
      .addOption(
        new Option('--kind <kind>', 'its place in the tree')
          .choices(Object.keys(KINDS))
          .makeOptionMandatory(),
      )
      .option('--parent <tenant>', 'parent name or id (default: yours)')
      .option('--label <k=v>', 'label (repeatable)', collect)
      .option('--request-id <key>', 'idempotency key: a retry with the same key returns the same tenant')
      .option('--dry-run', 'check everything, create nothing')
      .action(
        action<{
          name: string;
          kind: keyof typeof KINDS;
          parent?: string;
          label?: string[];
          requestId?: string;
          dryRun?: boolean;
        }>(async (ctx, _args, opts) => {
          const api = await ctx.api();
          const parent = opts.parent ? await resolveTenant(api, opts.parent) : undefined;
          const { tenant } = await api.tenants.createTenant({
            requestId: opts.requestId ?? randomUUID(),
            parentTenantId: parent?.tenantId ?? (await tenantIdOf(api, await ctx.tenant())),
            kind: KINDS[opts.kind],
            displayName: opts.name,
            labels: labelsFrom(opts.label, '--label'),
            ...dryRun(opts, CreateTenantRequestSchema),
          });
          if (ctx.out.format === 'table' || ctx.out.format === 'wide') {
            ctx.out.write(
              opts.dryRun
                ? `tenant/${opts.name} can be created (dry run: nothing was created)\n`
                : `tenant/${tenant?.displayName} created (${tenant?.tenantId})\n`,
            );
            return;
          }
          printResources(ctx.out, TenantSchema, tenant ? [tenant] : [], [], {
            single: true,
            name: (t) => t.tenantId,
          });
        }),
      ),
    [
      'cphone tenants create --name acme --kind reseller --label tier=gold',
      'cphone tenants create --name shop --kind customer --parent acme',
    ],
  );

  examples(
    tenants
      .command('update')
      .description("change a tenant's name, labels or state (suspending stops its phones and keys)")
      .argument('<tenant>', 'tenant name or id')
      .option('--name <name>', 'new display name')
      .option('--label <k=v>', 'set a label; k- removes it (repeatable)', collect)
      .addOption(
        new Option('--state <state>', 'active, or suspended (only an ancestor may)').choices(
          Object.keys(STATES),
        ),
      )
      .option('--dry-run', 'check everything, change nothing')
      .action(
        action<{ name?: string; label?: string[]; state?: keyof typeof STATES; dryRun?: boolean }>(
          async (ctx, [name], opts) => {
            const api = await ctx.api();
            const current = await resolveTenant(api, name as string);
            const next = create(TenantSchema, { tenantId: current.tenantId });
            const paths: string[] = [];
            if (opts.name !== undefined) {
              next.displayName = opts.name;
              paths.push('display_name');
            }
            if (opts.label?.length) {
              next.labels = editLabels(current.labels, opts.label);
              paths.push('labels');
            }
            if (opts.state) {
              next.state = STATES[opts.state];
              paths.push('state');
            }
            if (!paths.length) throw new UsageError('nothing to change: give --name, --label or --state');
            const { tenant } = await api.tenants.updateTenant({
              tenant: next,
              updateMask: { paths },
              ...dryRun(opts, UpdateTenantRequestSchema),
            });
            if (ctx.out.format === 'table' || ctx.out.format === 'wide') {
              ctx.out.write(
                `tenant/${tenant?.displayName ?? current.displayName} ${opts.dryRun ? 'can be updated (dry run)' : 'updated'}\n`,
              );
              return;
            }
            printResources(ctx.out, TenantSchema, tenant ? [tenant] : [], [], {
              single: true,
              name: (t) => t.tenantId,
            });
          },
        ),
      ),
    [
      'cphone tenants update shop --name "Shop GmbH" --label tier=gold --label trial-',
      'cphone tenants update shop --state suspended',
    ],
  );

  examples(
    tenants
      .command('delete')
      .description('delete tenants (refused while they have phones or children)')
      .argument('<tenants...>', 'tenant names or ids')
      .option('--yes', 'confirm the deletion')
      .action(
        action<{ yes?: boolean }>(async (ctx, [names], opts) => {
          requireYes(opts, `deleting tenant ${(names as string[]).join(', ')}`);
          const api = await ctx.api();
          for (const n of names as string[]) {
            const tenant = await resolveTenant(api, n);
            await api.tenants.deleteTenant({ tenantId: tenant.tenantId });
            ctx.out.write(`tenant/${tenant.displayName} deleted\n`);
          }
        }),
      ),
    ['cphone tenants delete shop --yes'],
  );

  registerQuotas(program);
}
