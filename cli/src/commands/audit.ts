// cphone audit: the audit trail of the caller's tenant subtree (tenant admins and above), newest
// first. Each event is a mutating call (whatever its outcome) or an attempt refused before its
// caller was known.
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { ActorKind, type AuditEvent, AuditEventSchema } from '@cphone/proto/api';
import type { Command } from 'commander';
import { action, type Ctx, durationMs, examples } from '../lib/command.js';
import { UsageError } from '../lib/errors.js';
import { age, type Column, enumText, printResources } from '../lib/output.js';
import { tenantIdOf } from '../lib/resolve.js';
import { watchList } from '../lib/watch.js';

interface AuditOpts {
  tenant?: string;
  descendants?: boolean;
  actor?: string;
  method?: string;
  resource?: string;
  outcome?: string;
  since?: string;
  until?: string;
  limit?: string;
  watch?: boolean;
}

const COLUMNS: Column<AuditEvent>[] = [
  { header: 'AGE', cell: (e) => age(e.createTime) },
  { header: 'METHOD', cell: (e) => e.method.replace(/^cphone\.api\.v1\./, '') },
  { header: 'RESOURCE', cell: (e) => (e.resourceType ? `${e.resourceType}/${e.resourceId || '-'}` : '-') },
  {
    header: 'ACTOR',
    cell: (e) => {
      const kind = enumText(ActorKind, e.actor?.kind ?? ActorKind.UNSPECIFIED, 'ACTOR_KIND_');
      return e.actor?.id ? `${kind}/${e.actor.id}` : kind;
    },
  },
  {
    header: 'OUTCOME',
    cell: (e) => e.outcome,
    tint: (text, e, p) => (e.outcome === 'ok' ? p.green(text) : p.red(text)),
  },
  { header: 'TENANT', cell: (e) => e.tenantId || '-' },
  { header: 'ADDRESS', cell: (e) => e.remoteAddress || '-', wide: true },
  { header: 'REQUEST', cell: (e) => e.requestId || '-', wide: true },
  { header: 'MESSAGE', cell: (e) => e.message || '-', wide: true },
];

const ACTOR_KINDS: Record<string, ActorKind> = {
  api_key: ActorKind.API_KEY,
  user: ActorKind.USER,
  host: ActorKind.HOST,
  system: ActorKind.SYSTEM,
  anonymous: ActorKind.ANONYMOUS,
};

/** "2h" (that long ago) or an RFC 3339 time. */
function timeOf(value: string, flag: string): Date {
  if (/^\d+(ms|s|m|h|d|w|y)$/.test(value.trim())) return new Date(Date.now() - durationMs(value, flag));
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) {
    throw new UsageError(
      `${flag} "${value}" is neither a duration (90s, 2h, 7d) nor a time (2026-12-04T10:00:00Z)`,
    );
  }
  return date;
}

/** --actor is a key or user id, or a kind of actor (anonymous, system …). */
function actorOf(value: string | undefined): { actorId?: string; actorKind?: ActorKind } {
  if (!value) return {};
  const kind = ACTOR_KINDS[value];
  return kind === undefined ? { actorId: value } : { actorKind: kind };
}

/** --resource is `type`, `type/id` or an id. */
function resourceOf(value: string | undefined): { resourceType?: string; resourceId?: string } {
  if (!value) return {};
  const slash = value.indexOf('/');
  if (slash >= 0) return { resourceType: value.slice(0, slash), resourceId: value.slice(slash + 1) };
  return /_/.test(value) && !/^[a-z]+_[a-z]+$/.test(value) ? { resourceId: value } : { resourceType: value };
}

async function listEvents(ctx: Ctx, opts: AuditOpts): Promise<AuditEvent[]> {
  const limit = opts.limit === undefined ? 100 : Number(opts.limit);
  if (!Number.isInteger(limit) || limit < 1)
    throw new UsageError(`--limit "${opts.limit}" must be a positive integer`);
  const api = await ctx.api();
  const request = {
    tenantId: await tenantIdOf(api, opts.tenant ?? (await ctx.tenant())),
    includeDescendants: opts.descendants ?? false,
    method: opts.method ?? '',
    outcome: opts.outcome ?? '',
    ...actorOf(opts.actor),
    ...resourceOf(opts.resource),
    ...(opts.since ? { startTime: timestampFromDate(timeOf(opts.since, '--since')) } : {}),
    ...(opts.until ? { endTime: timestampFromDate(timeOf(opts.until, '--until')) } : {}),
  };
  const events: AuditEvent[] = [];
  let pageToken = '';
  do {
    const page = await api.audit.listAuditEvents({
      ...request,
      pageSize: Math.min(1000, limit - events.length),
      pageToken,
    });
    events.push(...page.auditEvents);
    pageToken = page.nextPageToken;
  } while (pageToken && events.length < limit);
  return events;
}

export function registerAudit(program: Command): void {
  const audit = program
    .command('audit')
    .description(
      "the audit trail of your tenant's subtree: who called what, on which resource, with what outcome",
    );

  examples(
    audit
      .command('get')
      .alias('list')
      .description('list audit events, newest first (tenant admins and above)')
      .option('--tenant <tenant>', 'tenant name or id (default: yours)')
      .option('--descendants', 'include the tenants below it')
      .option('--actor <actor>', 'an API key or user id, or a kind: api_key, user, anonymous, system, host')
      .option('--method <method>', 'a method, e.g. DeviceService/StopDevice')
      .option('--resource <resource>', 'a resource: type (device), type/id (device/dev_…) or an id')
      .option('--outcome <code>', 'ok, or a Connect code in snake_case (not_found, unauthenticated …)')
      .option('--since <when>', 'only events at or after: a duration ago (2h, 7d) or a time (RFC 3339)')
      .option('--until <when>', 'only events before: a duration ago or a time')
      .option('--limit <n>', 'most events to print (pages are followed up to it)', '100')
      .option('-w, --watch', 'keep printing new events (polls every 2 s)')
      .action(
        action<AuditOpts>(async (ctx, _args, opts) => {
          if (opts.watch) {
            await watchList(
              ctx,
              () => listEvents(ctx, opts),
              AuditEventSchema,
              COLUMNS,
              (e) => e.auditEventId,
            );
            return;
          }
          printResources(ctx.out, AuditEventSchema, await listEvents(ctx, opts), COLUMNS, {
            name: (e) => e.auditEventId,
          });
        }),
      ),
    [
      'cphone audit get',
      'cphone audit get --descendants --outcome not_found --since 24h',
      'cphone audit get --resource device/dev_0123 -o wide',
      'cphone audit get --actor anonymous -o json',
      'cphone audit get --method DeviceService/DeleteDevice -w',
    ],
  );
}
