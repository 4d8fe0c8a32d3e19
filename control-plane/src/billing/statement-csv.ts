// A statement as CSV (RFC 4180): a header row, one record per charge line, a total record, then
// for a tenant with children one record per child, the customers' total and the margin.
import type { StatementRow } from './statements.js';

export const CSV_HEADER = [
  'record',
  'tenant_id',
  'month',
  'currency',
  'kind',
  'description',
  'dimension',
  'device_class',
  'price_book_id',
  'start_time',
  'end_time',
  'tier',
  'quantity',
  'unit_price',
  'amount',
] as const;

/** Chunks end on record boundaries and hold at most this many bytes (a longer record goes alone). */
export const CSV_CHUNK_BYTES = 64 * 1024;

/** A field quoted when it holds a comma, a quote or a line break; quotes doubled. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

function record(fields: readonly string[]): string {
  return `${fields.map(csvField).join(',')}\r\n`;
}

/** Every record of the statement, header first. */
export function* statementRecords(row: StatementRow): Generator<string> {
  yield record(CSV_HEADER);
  const base = (kind: string, tenantId = row.tenant_id) => [kind, tenantId, row.month, row.currency];
  for (const l of row.lines) {
    yield record([
      ...base('line'),
      l.kind,
      l.description,
      l.dimension,
      l.device_class,
      l.price_book_id,
      l.start_time,
      l.end_time,
      String(l.tier),
      l.quantity,
      l.unit_price,
      l.amount,
    ]);
  }
  const summary = (kind: string, amount: string, tenantId = row.tenant_id, description = '') =>
    record([...base(kind, tenantId), '', description, '', '', '', '', '', '', '', '', amount]);
  yield summary('total', row.total);
  if (row.customers.length === 0) return;
  for (const c of row.customers)
    yield summary('customer', c.total, c.tenant_id, c.priced ? '' : 'not priced');
  yield summary('customers_total', row.customers_total);
  yield summary('margin', row.margin);
}

/** The records gathered into chunks of at most CSV_CHUNK_BYTES. */
export function* statementCsvChunks(row: StatementRow): Generator<Uint8Array> {
  const encoder = new TextEncoder();
  let pending: string[] = [];
  let size = 0;
  for (const rec of statementRecords(row)) {
    const bytes = Buffer.byteLength(rec);
    if (size > 0 && size + bytes > CSV_CHUNK_BYTES) {
      yield encoder.encode(pending.join(''));
      pending = [];
      size = 0;
    }
    pending.push(rec);
    size += bytes;
  }
  if (size > 0) yield encoder.encode(pending.join(''));
}
