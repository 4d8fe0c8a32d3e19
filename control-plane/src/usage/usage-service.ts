// UsageService: QueryUsage (paged sums with totals) and ExportUsage (a resumable stream of the same
// rows as CSV or NDJSON), over the rollups (usage-query.ts). A caller sees its tenant and its
// descendants; any other tenant or device is NOT_FOUND.
import { create, toJsonString } from '@bufbuild/protobuf';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import {
  type ExportUsageRequest,
  type ExportUsageResponse,
  ExportUsageResponseSchema,
  type QueryUsageRequest,
  UsageBucket,
  UsageExportFormat,
  UsageGrouping,
  type UsageRecord,
  UsageRecordSchema,
  type UsageService,
} from '@cphone/proto';
import type { Kysely } from 'kysely';
import { principalOf } from '../api/context.js';
import { dateOf, ts } from '../api/convert.js';
import { type Page, readPage, tokenAfter } from '../api/pagination.js';
import { tenantSubtree } from '../auth/api-keys.js';
import { requireRole, resolveTenant } from '../auth/scope.js';
import type { Clock } from '../clock.js';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import type { Database } from '../store/schema.js';
import { SLOT_MS } from './rollups.js';
import { type BucketUnit, parseTimeZone } from './time-zone.js';
import {
  planUsage,
  type UsageCursor,
  type UsageGroupBy,
  type UsageRow,
  type UsageSelection,
  usagePage,
  usageSum,
} from './usage-query.js';

export interface UsageServiceDeps {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
}

const DAY_MS = 86_400_000;
export const MAX_QUERY_DAYS = 366;
export const MAX_EXPORT_DAYS = 3660;
/** Largest chunk ExportUsage sends (whole rows; a single longer row goes alone). */
export const EXPORT_CHUNK_BYTES = 64 * 1024;
const EXPORT_BATCH_ROWS = 500;

const GROUPINGS: Record<UsageGrouping, { groupBy: UsageGroupBy; day?: true }> = {
  [UsageGrouping.UNSPECIFIED]: { groupBy: 'tenant' },
  [UsageGrouping.TENANT]: { groupBy: 'tenant' },
  [UsageGrouping.DEVICE]: { groupBy: 'device' },
  [UsageGrouping.DAY]: { groupBy: 'tenant', day: true },
  [UsageGrouping.DEVICE_DAY]: { groupBy: 'device', day: true },
  [UsageGrouping.HOST]: { groupBy: 'host' },
  [UsageGrouping.IMAGE]: { groupBy: 'image' },
  [UsageGrouping.LABEL]: { groupBy: 'label' },
  [UsageGrouping.SUBTREE]: { groupBy: 'subtree' },
};

const BUCKETS: Record<UsageBucket, BucketUnit | undefined> = {
  [UsageBucket.UNSPECIFIED]: undefined,
  [UsageBucket.RANGE]: 'range',
  [UsageBucket.HOUR]: 'hour',
  [UsageBucket.DAY]: 'day',
  [UsageBucket.MONTH]: 'month',
};

type Common = Pick<
  QueryUsageRequest,
  | 'tenantId'
  | 'includeDescendants'
  | 'startTime'
  | 'endTime'
  | 'groupBy'
  | 'deviceId'
  | 'timeZone'
  | 'bucket'
  | 'labelKey'
>;

function rangeOf(req: Common, maxDays: number): { start: Date; end: Date } {
  const start = dateOf(req.startTime);
  const end = dateOf(req.endTime);
  if (!start) throw new InvalidArgumentError('start_time', '', 'is required');
  if (!end) throw new InvalidArgumentError('end_time', '', 'is required');
  for (const [field, value] of [
    ['start_time', start],
    ['end_time', end],
  ] as const) {
    if (value.getTime() % SLOT_MS !== 0) {
      throw new InvalidArgumentError(
        field,
        value.toISOString(),
        'must be a multiple of 15 minutes (the usage resolution)',
      );
    }
  }
  if (end <= start) {
    throw new InvalidArgumentError(
      'end_time',
      end.toISOString(),
      `must be after start_time ${start.toISOString()}`,
    );
  }
  if (end.getTime() - start.getTime() > maxDays * DAY_MS) {
    throw new InvalidArgumentError(
      'end_time',
      end.toISOString(),
      `must be at most ${maxDays} days after start_time`,
    );
  }
  return { start, end };
}

/** Checks the request and scopes it: the selection and what a page token must match. */
async function selectionOf(
  deps: UsageServiceDeps,
  req: Common,
  context: HandlerContext,
  maxDays: number,
): Promise<{ sel: UsageSelection; tenantId: string }> {
  const principal = principalOf(context);
  requireRole(principal, 'tenant_admin', 'reading usage');
  const tenantId = resolveTenant(principal, req.tenantId);
  // The zone first: a caller's dates are often made with it.
  parseTimeZone(req.timeZone);
  const { start, end } = rangeOf(req, maxDays);
  const grouping = GROUPINGS[req.groupBy];
  if (!grouping) throw new InvalidArgumentError('group_by', req.groupBy, 'must be a UsageGrouping');
  if (!(req.bucket in BUCKETS)) throw new InvalidArgumentError('bucket', req.bucket, 'must be a UsageBucket');
  let bucket = BUCKETS[req.bucket];
  if (grouping.day) {
    if (bucket !== undefined && bucket !== 'day') {
      throw new InvalidArgumentError(
        'bucket',
        UsageBucket[req.bucket],
        `must be DAY or unset with group_by ${UsageGrouping[req.groupBy]}`,
      );
    }
    bucket = 'day';
  }
  if (grouping.groupBy === 'label' && !req.labelKey) {
    throw new InvalidArgumentError('label_key', '', 'is required with group_by LABEL');
  }
  const tenantIds = req.includeDescendants ? await tenantSubtree(deps.db, tenantId) : [tenantId];
  if (tenantIds.length === 0) throw new NotFoundError('tenant', tenantId);
  if (req.deviceId) {
    const device = await deps.db
      .selectFrom('device')
      .select('id')
      .where('id', '=', req.deviceId)
      .where('tenant_id', 'in', tenantIds)
      .executeTakeFirst();
    if (!device) throw new NotFoundError('device', req.deviceId);
  }
  const sel: UsageSelection = {
    tenantIds,
    start,
    end,
    groupBy: grouping.groupBy,
    bucket: bucket ?? 'range',
    timeZone: req.timeZone,
    labelKey: grouping.groupBy === 'label' ? req.labelKey : undefined,
    deviceId: req.deviceId || undefined,
    now: deps.clock.now(),
  };
  // Validates the zone (INVALID_ARGUMENT naming time_zone) before any query runs.
  planUsage(sel);
  return { sel, tenantId };
}

/** What a page token or resume cursor is bound to. */
function queryKey(kind: string, tenantId: string, sel: UsageSelection, extra: object = {}) {
  return {
    kind,
    tenantId,
    start: sel.start.getTime(),
    end: sel.end.getTime(),
    groupBy: sel.groupBy,
    bucket: sel.bucket,
    zone: sel.timeZone,
    label: sel.labelKey ?? '',
    device: sel.deviceId ?? '',
    ...extra,
  };
}

function cursorOf(page: Page): UsageCursor | undefined {
  if (page.after === undefined) return undefined;
  const parsed = JSON.parse(page.after) as [string[], number];
  return { key: parsed[0], bucket: parsed[1] };
}

const cursorId = (c: UsageCursor) => JSON.stringify([c.key, c.bucket]);

const minutes = (seconds: bigint, per = 1) => Number(seconds) / 60 / per;

export function recordOf(row: UsageRow): UsageRecord {
  return create(UsageRecordSchema, {
    tenantId: row.tenantId,
    deviceId: row.deviceId,
    hostId: row.hostId,
    imageId: row.imageId,
    labelValue: row.labelValue,
    startTime: ts(row.start),
    endTime: ts(row.end),
    deviceMinutes: minutes(row.runningSeconds),
    stoppedDeviceMinutes: minutes(row.stoppedSeconds),
    vcpuMinutes: minutes(row.vcpuMillicoreSeconds, 1000),
    memoryGibMinutes: minutes(row.memoryMibSeconds, 1024),
    storageGibMinutes: minutes(row.storageGibSeconds),
    deviceCount: row.deviceCount,
    deviceSeconds: row.runningSeconds,
    stoppedDeviceSeconds: row.stoppedSeconds,
    vcpuMillicoreSeconds: row.vcpuMillicoreSeconds,
    memoryMibSeconds: row.memoryMibSeconds,
    storageGibSeconds: row.storageGibSeconds,
    viewerMinutes: minutes(row.viewerSeconds),
    viewerSeconds: row.viewerSeconds,
    egressBytes: row.egressBytes,
  });
}

export async function queryUsage(deps: UsageServiceDeps, req: QueryUsageRequest, context: HandlerContext) {
  const { sel, tenantId } = await selectionOf(deps, req, context, MAX_QUERY_DAYS);
  const page = readPage(req.pageSize || 100, req.pageToken, queryKey('query', tenantId, sel));
  const plan = planUsage(sel);
  const [{ rows, cursors }, total] = await Promise.all([
    usagePage(deps.db, plan, cursorOf(page), page.limit),
    usageSum(deps.db, sel),
  ]);
  const more = rows.length > page.pageSize;
  const last = cursors[page.pageSize - 1];
  return {
    usageRecords: rows.slice(0, page.pageSize).map(recordOf),
    total: recordOf({ ...total, tenantId, start: sel.start, end: sel.end }),
    nextPageToken: more && last ? tokenAfter(cursorId(last), page) : '',
  };
}

export const CSV_HEADER = [
  'tenant_id',
  'device_id',
  'start_time',
  'end_time',
  'device_minutes',
  'stopped_device_minutes',
  'vcpu_minutes',
  'memory_gib_minutes',
  'storage_gib_minutes',
  'device_count',
  'host_id',
  'image_id',
  'label_value',
  'device_seconds',
  'stopped_device_seconds',
  'vcpu_millicore_seconds',
  'memory_mib_seconds',
  'storage_gib_seconds',
  'viewer_minutes',
  'viewer_seconds',
  'egress_bytes',
];

function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

function csvLine(r: UsageRecord, row: UsageRow): string {
  return `${[
    r.tenantId,
    r.deviceId,
    row.start.toISOString(),
    row.end.toISOString(),
    r.deviceMinutes,
    r.stoppedDeviceMinutes,
    r.vcpuMinutes,
    r.memoryGibMinutes,
    r.storageGibMinutes,
    r.deviceCount,
    r.hostId,
    r.imageId,
    r.labelValue,
    r.deviceSeconds,
    r.stoppedDeviceSeconds,
    r.vcpuMillicoreSeconds,
    r.memoryMibSeconds,
    r.storageGibSeconds,
    r.viewerMinutes,
    r.viewerSeconds,
    r.egressBytes,
  ]
    .map((v) => csvField(String(v)))
    .join(',')}\n`;
}

/**
 * Streams the rows in batches from keyset queries (nothing buffered beyond a batch): each chunk
 * holds whole rows and the cursor after its last row.
 */
export async function* exportUsage(
  deps: UsageServiceDeps,
  req: ExportUsageRequest,
  context: HandlerContext,
): AsyncGenerator<ExportUsageResponse> {
  const { sel, tenantId } = await selectionOf(deps, req, context, MAX_EXPORT_DAYS);
  const ndjson = req.format === UsageExportFormat.NDJSON;
  if (!ndjson && req.format !== UsageExportFormat.CSV && req.format !== UsageExportFormat.UNSPECIFIED) {
    throw new InvalidArgumentError('format', req.format, 'must be CSV or NDJSON');
  }
  let page: Page;
  try {
    page = readPage(EXPORT_BATCH_ROWS, req.resumeCursor, queryKey('export', tenantId, sel, { ndjson }));
  } catch (error) {
    if (error instanceof InvalidArgumentError) {
      throw new InvalidArgumentError(
        'resume_cursor',
        req.resumeCursor,
        'is not a cursor of an export of this same request (or its signing key was retired)',
      );
    }
    throw error;
  }
  const plan = planUsage(sel);
  const encoder = new TextEncoder();
  const chunk = (text: string, cursor: UsageCursor | undefined) =>
    create(ExportUsageResponseSchema, {
      ...(ndjson ? { ndjsonChunk: encoder.encode(text) } : { csvChunk: encoder.encode(text) }),
      cursor: cursor ? tokenAfter(cursorId(cursor), page) : req.resumeCursor,
    });
  let text = ndjson || req.resumeCursor ? '' : `${CSV_HEADER.join(',')}\n`;
  let lastInChunk: UsageCursor | undefined;
  let after = cursorOf(page);
  for (;;) {
    context.signal.throwIfAborted();
    const { rows, cursors } = await usagePage(deps.db, plan, after, EXPORT_BATCH_ROWS);
    for (const [i, row] of rows.entries()) {
      const record = recordOf(row);
      const line = ndjson ? `${toJsonString(UsageRecordSchema, record)}\n` : csvLine(record, row);
      if (text.length > 0 && Buffer.byteLength(text) + Buffer.byteLength(line) > EXPORT_CHUNK_BYTES) {
        yield chunk(text, lastInChunk);
        text = '';
      }
      text += line;
      lastInChunk = cursors[i];
    }
    after = cursors[cursors.length - 1];
    if (rows.length < EXPORT_BATCH_ROWS) break;
  }
  if (text.length > 0) yield chunk(text, lastInChunk);
}

export function usageService(deps: UsageServiceDeps): Partial<ServiceImpl<typeof UsageService>> {
  return {
    queryUsage: (req, context) => queryUsage(deps, req, context),
    exportUsage: (req, context) => exportUsage(deps, req, context),
  };
}
