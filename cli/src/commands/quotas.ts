// cphone quotas: a tenant's limits (get, set) and what its subtree uses against them, up the path to
// the root (usage). Also the quota tables `tenants describe` prints.
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import {
  DeviceMinutesAction,
  type Quota,
  QuotaPeriod,
  QuotaSchema,
  type QuotaUsage,
  QuotaUsageSchema,
  SetQuotaRequestSchema,
  type Tenant,
} from '@cphone/proto/api';
import { type Command, Option } from 'commander';
import type { Api } from '../lib/api.js';
import { action, type Ctx, dryRun, examples } from '../lib/command.js';
import { UsageError } from '../lib/errors.js';
import { type Column, coresText, enumText, mibText, printResources } from '../lib/output.js';
import { resolveTenant } from '../lib/resolve.js';
import { millicores, sizeIn } from '../lib/spec.js';

type LimitField =
  | 'maxDevices'
  | 'maxRunningDevices'
  | 'maxVcpuMillicores'
  | 'maxMemoryMib'
  | 'maxDeviceMinutes';
type UsageField = 'devices' | 'runningDevices' | 'vcpuMillicores' | 'memoryMib' | 'deviceMinutes';

interface Limit {
  /** Quota's field, its update_mask path, and the QuotaUsage field counted against it. */
  field: LimitField;
  path: string;
  usage: UsageField;
  header: string;
  /** commander's flag and the key of its value in the options. */
  flags: string;
  option: string;
  help: string;
  parse: (value: string) => number | bigint;
  text: (value: number | bigint) => string;
}

function count(flag: string, big: boolean) {
  return (value: string): number | bigint => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new UsageError(`${flag} "${value}" must be a whole number >= 0, or "none" for no limit`);
    }
    return big ? BigInt(n) : n;
  };
}

/** Every limit QuotaLimits holds, in the order tables show them. */
export const LIMITS: readonly Limit[] = [
  {
    field: 'maxDevices',
    path: 'max_devices',
    usage: 'devices',
    header: 'DEVICES',
    flags: '--max-devices <n>',
    option: 'maxDevices',
    help: 'phones that may exist',
    parse: count('--max-devices', false),
    text: String,
  },
  {
    field: 'maxRunningDevices',
    path: 'max_running_devices',
    usage: 'runningDevices',
    header: 'RUNNING',
    flags: '--max-running-devices <n>',
    option: 'maxRunningDevices',
    help: 'phones that may run at once',
    parse: count('--max-running-devices', false),
    text: String,
  },
  {
    field: 'maxVcpuMillicores',
    path: 'max_vcpu_millicores',
    usage: 'vcpuMillicores',
    header: 'VCPU',
    flags: '--max-vcpu <cores>',
    option: 'maxVcpu',
    help: 'vCPUs of running phones, e.g. 64 or 1500m',
    parse: (v) => BigInt(millicores(v, '--max-vcpu')),
    text: coresText,
  },
  {
    field: 'maxMemoryMib',
    path: 'max_memory_mib',
    usage: 'memoryMib',
    header: 'MEMORY',
    flags: '--max-memory <size>',
    option: 'maxMemory',
    help: 'memory of running phones, e.g. 128Gi',
    parse: (v) => BigInt(sizeIn(v, 'Mi', '--max-memory')),
    text: mibText,
  },
  {
    field: 'maxDeviceMinutes',
    path: 'max_device_minutes',
    usage: 'deviceMinutes',
    header: 'MINUTES',
    flags: '--max-device-minutes <n>',
    option: 'maxDeviceMinutes',
    help: 'minutes of running phones per --period (MINUTES in tables); once used up, starts are refused',
    parse: count('--max-device-minutes', true),
    text: String,
  },
];

const NONE = new Set(['none', 'unlimited']);

function limitText(l: Limit, q: Quota | undefined): string {
  const v = q?.[l.field];
  return v === undefined ? '-' : l.text(v);
}

/** Quota columns; `names` maps tenant ids to display names. */
function quotaColumns(names: ReadonlyMap<string, string>): Column<Quota>[] {
  return [
    { header: 'TENANT', cell: (q) => names.get(q.tenantId) ?? q.tenantId },
    ...LIMITS.map((l) => ({ header: l.header, cell: (q: Quota) => limitText(l, q) })),
    { header: 'PERIOD', cell: (q) => enumText(QuotaPeriod, q.period), wide: true },
    { header: 'ID', cell: (q) => q.tenantId, wide: true },
  ];
}

/** Usage columns: used/limit per field ("-" is no limit of the tenant's own). */
export function usageColumns(names: ReadonlyMap<string, string>): Column<QuotaUsage>[] {
  return [
    { header: 'TENANT', cell: (u) => names.get(u.tenantId) ?? u.tenantId },
    ...LIMITS.map((l) => ({
      header: l.header,
      cell: (u: QuotaUsage) => `${l.text(u[l.usage])}/${limitText(l, u.quota)}`,
      tint: (t: string, u: QuotaUsage, p: Ctx['out']['paint']) => {
        const limit = u.quota?.[l.field];
        return limit !== undefined && Number(u[l.usage]) >= Number(limit) ? p.red(t) : t;
      },
    })),
    { header: 'PERIOD', cell: (u) => enumText(QuotaPeriod, u.quota?.period ?? 0), wide: true },
    { header: 'ID', cell: (u) => u.tenantId, wide: true },
  ];
}

/**
 * The tenant's usage, then its parent's, up to the highest tenant the caller sees (admission counts
 * every one of them).
 */
export async function usagePath(
  api: Api,
  tenant: Tenant,
): Promise<{ tenants: Tenant[]; usage: QuotaUsage[] }> {
  const tenants: Tenant[] = [];
  const usage: QuotaUsage[] = [];
  let next: Tenant | undefined = tenant;
  while (next) {
    const { quotaUsage } = await api.tenants.getQuotaUsage({ tenantId: next.tenantId });
    tenants.push(next);
    if (quotaUsage) usage.push(quotaUsage);
    if (!next.parentTenantId) break;
    try {
      next = (await api.tenants.getTenant({ tenantId: next.parentTenantId })).tenant;
    } catch (e) {
      // Above the caller's own tenant: not its to see.
      if (ConnectError.from(e).code !== Code.NotFound) throw e;
      next = undefined;
    }
  }
  return { tenants, usage };
}

const namesOf = (tenants: readonly Tenant[]) => new Map(tenants.map((t) => [t.tenantId, t.displayName]));

type SetFlags = Record<string, string | undefined> & {
  period?: string;
  deviceMinutesAction?: string;
  dryRun?: boolean;
};

function quotaRequest(tenantId: string, opts: SetFlags) {
  const quota = create(QuotaSchema, { tenantId });
  const paths: string[] = [];
  const fields = quota as unknown as Record<LimitField, number | bigint | undefined>;
  for (const l of LIMITS) {
    const value = opts[l.option];
    if (value === undefined) continue;
    fields[l.field] = NONE.has(value.toLowerCase()) ? undefined : l.parse(value);
    paths.push(l.path);
  }
  if (opts.period) {
    quota.period = opts.period === 'day' ? QuotaPeriod.DAY : QuotaPeriod.MONTH;
    paths.push('period');
  }
  if (opts.deviceMinutesAction) {
    quota.deviceMinutesAction =
      opts.deviceMinutesAction === 'stop-running'
        ? DeviceMinutesAction.STOP_RUNNING
        : DeviceMinutesAction.REFUSE_STARTS;
    paths.push('device_minutes_action');
  }
  if (!paths.length) {
    throw new UsageError(
      `nothing to set: give at least one of ${LIMITS.map((l) => l.flags.split(' ')[0]).join(', ')}, --period, --device-minutes-action`,
    );
  }
  return { quota, updateMask: { paths } };
}

export function registerQuotas(program: Command): void {
  const quotas = program
    .command('quotas')
    .alias('quota')
    .description("a tenant's limits (they cover its whole subtree) and what it uses against them");

  examples(
    quotas
      .command('get')
      .description("a tenant's own limits (- is no limit of its own; its ancestors' still apply)")
      .argument('[tenant]', 'tenant name or id (default: yours)')
      .action(
        action(async (ctx, [name]) => {
          const api = await ctx.api();
          const tenant = await resolveTenant(api, (name as string | undefined) ?? (await ctx.tenant()));
          const { quota } = await api.tenants.getQuota({ tenantId: tenant.tenantId });
          printResources(ctx.out, QuotaSchema, quota ? [quota] : [], quotaColumns(namesOf([tenant])), {
            single: true,
            name: (q) => q.tenantId,
          });
        }),
      ),
    ['cphone quotas get acme', 'cphone quotas get acme -o json'],
  );

  const set = quotas
    .command('set')
    .description('change some limits of a tenant (the others keep their value); "none" removes a limit')
    .argument('<tenant>', 'tenant name or id');
  for (const l of LIMITS) set.option(l.flags, l.help);
  set
    .addOption(new Option('--period <period>', 'period of --max-device-minutes').choices(['day', 'month']))
    .addOption(
      new Option(
        '--device-minutes-action <action>',
        'when --max-device-minutes is used up: refuse starts, or stop the running phones too',
      ).choices(['refuse-starts', 'stop-running']),
    )
    .option('--dry-run', 'check the limits against the parent and children, change nothing');
  examples(
    set.action(
      action<SetFlags>(async (ctx, [name], opts) => {
        const api = await ctx.api();
        const tenant = await resolveTenant(api, name as string);
        // The update mask names only the flags given: the API changes those limits and keeps the
        // others in one transaction, so a concurrent change of another limit is not lost.
        const res = await api.tenants.setQuota({
          ...quotaRequest(tenant.tenantId, opts),
          ...dryRun(opts, SetQuotaRequestSchema),
        });
        if (ctx.out.format === 'table' || ctx.out.format === 'wide') {
          ctx.out.note(
            `quota of tenant/${tenant.displayName} ${opts.dryRun ? 'can be set (dry run)' : 'set'}`,
          );
        }
        printResources(ctx.out, QuotaSchema, res.quota ? [res.quota] : [], quotaColumns(namesOf([tenant])), {
          single: true,
          name: (q) => q.tenantId,
        });
      }),
    ),
    [
      'cphone quotas set acme --max-devices 500 --max-vcpu 1000 --max-memory 2Ti',
      'cphone quotas set shop --max-running-devices 20 --max-device-minutes 60000 --period month',
      'cphone quotas set shop --max-devices none',
    ],
  );

  examples(
    quotas
      .command('usage')
      .description("what a tenant's subtree uses against its limits, and each ancestor's, up to yours")
      .argument('[tenant]', 'tenant name or id (default: yours)')
      .action(
        action(async (ctx, [name]) => {
          const api = await ctx.api();
          const tenant = await resolveTenant(api, (name as string | undefined) ?? (await ctx.tenant()));
          const { tenants, usage } = await usagePath(api, tenant);
          printResources(ctx.out, QuotaUsageSchema, usage, usageColumns(namesOf(tenants)), {
            name: (u) => u.tenantId,
          });
        }),
      ),
    ['cphone quotas usage shop', 'cphone quotas usage -o yaml'],
  );
}
