// cphone usage: metered usage of a tenant (and its customers) over a range, grouped and bucketed in
// a time zone (get), and the same rows streamed as CSV or NDJSON (export), resumable after an
// interruption from the cursor it prints on stderr.
import { once } from 'node:events';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import {
  UsageBucket,
  UsageExportFormat,
  UsageGrouping,
  type UsageRecord,
  UsageRecordSchema,
} from '@cphone/proto/api';
import { type Command, Option } from 'commander';
import { stringify } from 'yaml';
import { action, type Ctx, examples } from '../lib/command.js';
import { CliError, EXIT, UsageError } from '../lib/errors.js';
import { type Column, jsonOf, printResources } from '../lib/output.js';
import { resolveTenant } from '../lib/resolve.js';

interface SelectFlags {
  from?: string;
  to?: string;
  by?: string;
  tz?: string;
  descendants?: boolean;
  device?: string;
}

const GROUPS: Record<string, UsageGrouping> = {
  tenant: UsageGrouping.TENANT,
  device: UsageGrouping.DEVICE,
  host: UsageGrouping.HOST,
  image: UsageGrouping.IMAGE,
  label: UsageGrouping.LABEL,
  subtree: UsageGrouping.SUBTREE,
};
const BUCKETS: Record<string, UsageBucket> = {
  range: UsageBucket.RANGE,
  hour: UsageBucket.HOUR,
  day: UsageBucket.DAY,
  month: UsageBucket.MONTH,
};

const FIXED = /^([+-])(\d{2}):(\d{2})$/;

/** The zone's offset (ms) at an instant: fixed offsets as given, IANA names from the runtime's tables. */
function offsetAt(zone: string, ms: number): number {
  if (!zone || zone === 'UTC' || zone === 'Z') return 0;
  const fixed = FIXED.exec(zone);
  if (fixed) return (fixed[1] === '-' ? -1 : 1) * (Number(fixed[2]) * 60 + Number(fixed[3])) * 60_000;
  let name: string | undefined;
  try {
    name = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' })
      .formatToParts(ms)
      .find((p) => p.type === 'timeZoneName')?.value;
  } catch {
    throw new UsageError(
      `--tz "${zone}" must be an IANA time zone (Europe/Paris) or an offset such as +05:30`,
    );
  }
  const m = /^GMT([+-])(\d{2}):(\d{2})$/.exec(name ?? '');
  return m ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) * 60_000 : 0;
}

/** A date (local midnight in the zone), a date and time (local), or an RFC 3339 instant. */
export function instantOf(value: string, zone: string, flag: string): Date {
  const local = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2}))?$/.exec(value);
  if (local) {
    const wall = Date.UTC(
      Number(local[1]),
      Number(local[2]) - 1,
      Number(local[3]),
      Number(local[4] ?? 0),
      Number(local[5] ?? 0),
    );
    const guess = wall - offsetAt(zone, wall);
    return new Date(wall - offsetAt(zone, guess));
  }
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(ms)) {
    throw new UsageError(
      `${flag} "${value}" must be a date (2026-11-01), a local time (2026-11-01T08:00) or RFC 3339`,
    );
  }
  return new Date(ms);
}

function monthStartIn(zone: string, shift: number): Date {
  const now = Date.now();
  const wall = new Date(now + offsetAt(zone, now));
  const y = wall.getUTCFullYear();
  const m = wall.getUTCMonth() + shift;
  const first = new Date(Date.UTC(y, m, 1));
  return instantOf(first.toISOString().slice(0, 10), zone, '--from');
}

/** `--by tenant,day`, `--by label=tier,month`, `--by day`: a grouping and a bucket. */
function byOf(value: string | undefined): { groupBy: UsageGrouping; bucket: UsageBucket; labelKey: string } {
  let groupBy = UsageGrouping.TENANT;
  let bucket = UsageBucket.RANGE;
  let labelKey = '';
  for (const part of (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [name = '', key] = part.split('=');
    if (name in GROUPS) {
      groupBy = GROUPS[name] as UsageGrouping;
      if (name === 'label') {
        if (!key) throw new UsageError('--by label needs the label key: --by label=tier');
        labelKey = key;
      }
    } else if (name in BUCKETS) bucket = BUCKETS[name] as UsageBucket;
    else {
      throw new UsageError(
        `--by "${part}" must be one of ${[...Object.keys(GROUPS), ...Object.keys(BUCKETS)].join(', ')} (label as label=KEY)`,
      );
    }
  }
  return { groupBy, bucket, labelKey };
}

async function selection(ctx: Ctx, opts: SelectFlags) {
  const api = await ctx.api();
  const tenant = await resolveTenant(api, await ctx.tenant());
  const zone = opts.tz ?? '';
  const start = opts.from ? instantOf(opts.from, zone, '--from') : monthStartIn(zone, 0);
  const end = opts.to ? instantOf(opts.to, zone, '--to') : monthStartIn(zone, 1);
  return {
    api,
    tenant,
    request: {
      tenantId: tenant.tenantId,
      includeDescendants: opts.descendants === true,
      startTime: timestampFromDate(start),
      endTime: timestampFromDate(end),
      timeZone: zone,
      deviceId: opts.device ?? '',
      ...byOf(opts.by),
    },
  };
}

function selectOptions(command: Command): Command {
  return command
    .option(
      '--from <date>',
      'start: a date (local midnight in --tz), a local time or RFC 3339 (default: this month)',
    )
    .option('--to <date>', 'end, exclusive (default: the start of next month)')
    .option(
      '--by <list>',
      'grouping and bucket: tenant|device|host|image|label=KEY|subtree and range|hour|day|month, e.g. tenant,day',
    )
    .option('--tz <zone>', 'time zone of dates and buckets: IANA name or offset like +05:30 (default UTC)')
    .option('--descendants', "include the tenant's customers")
    .option('--device <id>', 'only this device');
}

const minutes = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(2));

function columns(zone: string): Column<UsageRecord>[] {
  const local = (r: UsageRecord, field: 'startTime' | 'endTime') => {
    const ts = r[field];
    if (!ts) return '';
    const ms = Number(ts.seconds) * 1000;
    return new Date(ms + offsetAt(zone, ms)).toISOString().slice(0, 16).replace('T', ' ');
  };
  const group = (r: UsageRecord) => r.deviceId || r.hostId || r.imageId || r.labelValue || r.tenantId || '-';
  return [
    { header: 'GROUP', cell: group },
    { header: 'TENANT', cell: (r) => r.tenantId, wide: true },
    { header: 'START', cell: (r) => local(r, 'startTime') },
    { header: 'END', cell: (r) => local(r, 'endTime') },
    { header: 'RUN MIN', cell: (r) => minutes(r.deviceMinutes) },
    { header: 'STOP MIN', cell: (r) => minutes(r.stoppedDeviceMinutes) },
    { header: 'VCPU MIN', cell: (r) => minutes(r.vcpuMinutes) },
    { header: 'MEM GIB MIN', cell: (r) => minutes(r.memoryGibMinutes) },
    { header: 'DISK GIB MIN', cell: (r) => minutes(r.storageGibMinutes), wide: true },
    { header: 'VIEW MIN', cell: (r) => minutes(r.viewerMinutes), wide: true },
    { header: 'DEVICES', cell: (r) => String(r.deviceCount) },
  ];
}

export function registerUsage(program: Command): void {
  const usage = program
    .command('usage')
    .description(
      'metered usage: device, vCPU, memory, storage and viewer minutes, by tenant, device, host, image or label',
    );

  examples(
    selectOptions(
      usage
        .command('get')
        .description('usage over a range, grouped and bucketed in a time zone; the last line is the total'),
    ).action(
      action<SelectFlags>(async (ctx, _args, opts) => {
        const { api, request } = await selection(ctx, opts);
        const rows: UsageRecord[] = [];
        let total: UsageRecord | undefined;
        let pageToken = '';
        do {
          const page = await api.usage.queryUsage({ ...request, pageSize: 1000, pageToken });
          rows.push(...page.usageRecords);
          total = page.total;
          pageToken = page.nextPageToken;
        } while (pageToken);
        if (ctx.out.format === 'json' || ctx.out.format === 'yaml') {
          const doc = {
            items: rows.map((r) => jsonOf(UsageRecordSchema, r)),
            total: total ? jsonOf(UsageRecordSchema, total) : undefined,
          };
          ctx.out.write(ctx.out.format === 'json' ? `${JSON.stringify(doc, null, 2)}\n` : stringify(doc));
          return;
        }
        const shown = total && ctx.out.format !== 'name' ? [...rows, { ...total, tenantId: 'TOTAL' }] : rows;
        printResources(ctx.out, UsageRecordSchema, shown, columns(request.timeZone), {
          name: (r) => r.deviceId || r.hostId || r.imageId || r.labelValue || r.tenantId,
        });
      }),
    ),
    [
      'cphone usage get --tenant acme --descendants --from 2026-11-01 --to 2026-12-01',
      'cphone usage get --tenant acme --from 2026-11-01 --to 2026-12-01 --by day --tz +05:30 --descendants',
      'cphone usage get --by device,hour --tz America/New_York --from 2026-11-01 --to 2026-11-02 -o json',
      'cphone usage get --by label=tier,month --descendants',
    ],
  );

  examples(
    selectOptions(
      usage.command('export').description('stream the rows as CSV or NDJSON to stdout; resumable'),
    )
      .addOption(new Option('--format <format>', 'csv or ndjson').choices(['csv', 'ndjson']).default('csv'))
      .option(
        '--resume <cursor>',
        'go on after the last row an interrupted export wrote (it printed the cursor)',
      )
      .action(
        action<SelectFlags & { format: string; resume?: string }>(async (ctx, _args, opts) => {
          const { api, request } = await selection(ctx, opts);
          const abort = new AbortController();
          let cursor = opts.resume ?? '';
          const interrupted = () => abort.abort();
          process.once('SIGINT', interrupted);
          process.once('SIGTERM', interrupted);
          const req = {
            ...request,
            format: opts.format === 'ndjson' ? UsageExportFormat.NDJSON : UsageExportFormat.CSV,
            resumeCursor: cursor,
          };
          try {
            for await (const chunk of api.usage.exportUsage(req, { signal: abort.signal })) {
              const bytes = chunk.csvChunk.length > 0 ? chunk.csvChunk : chunk.ndjsonChunk;
              // Handed to stdout before the cursor moves past it: the cursor never skips a row.
              if (!process.stdout.write(bytes)) await once(process.stdout, 'drain');
              if (chunk.cursor) cursor = chunk.cursor;
            }
          } catch (error) {
            const resume = cursor ? `resume with: --resume ${cursor}` : 'nothing was written; run it again';
            process.stderr.write(`export interrupted; ${resume}\n`);
            if (abort.signal.aborted) throw new CliError('export interrupted', EXIT.interrupted);
            throw error;
          } finally {
            process.off('SIGINT', interrupted);
            process.off('SIGTERM', interrupted);
          }
        }),
      ),
    [
      'cphone usage export --tenant acme --descendants --from 2026-11-01 --to 2026-12-01 > usage.csv',
      'cphone usage export --format ndjson --by device,day --tz +05:45 > usage.ndjson',
      'cphone usage export --tenant acme --from 2026-11-01 --to 2026-12-01 --resume CURSOR >> usage.csv',
    ],
  );
}
