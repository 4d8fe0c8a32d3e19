// What commands print: tables aligned to the terminal's width (kubectl's look: upper-case headers,
// two spaces between columns, no borders), or the API's own JSON (protobuf's JSON mapping) or YAML
// of it. Colour only on a TTY and never with NO_COLOR or --no-color.
import { type DescMessage, type MessageShape, toJson } from '@bufbuild/protobuf';
import { type Timestamp, timestampMs } from '@bufbuild/protobuf/wkt';
import pc from 'picocolors';
import stringWidth from 'string-width';
import { stringify } from 'yaml';
import { UsageError } from './errors.js';

export const FORMATS = ['table', 'wide', 'json', 'yaml', 'name'] as const;
export type Format = (typeof FORMATS)[number];

export function parseFormat(value: string | undefined): Format {
  const v = value ?? 'table';
  if (!(FORMATS as readonly string[]).includes(v)) {
    throw new UsageError(`--output "${v}" is not one of ${FORMATS.join(', ')}`);
  }
  return v as Format;
}

export interface OutputOptions {
  format: Format;
  quiet: boolean;
  color: boolean;
  /** Terminal width for tables; undefined in a pipe (no truncation). */
  width: number | undefined;
}

/** Where output goes; tests and `--watch` use the same writer. */
export interface Out extends OutputOptions {
  write(text: string): void;
  /** Progress, notes and warnings: stderr, so stdout stays data. Silent with --quiet. */
  note(text: string): void;
  paint: ReturnType<typeof pc.createColors>;
}

export function createOut(options: {
  output?: string | undefined;
  quiet?: boolean | undefined;
  color?: boolean | undefined;
}): Out {
  const tty = Boolean(process.stdout.isTTY);
  const color = options.color !== false && tty && !('NO_COLOR' in process.env && process.env.NO_COLOR !== '');
  const columns = Number(process.env.COLUMNS) || process.stdout.columns || undefined;
  return {
    format: parseFormat(options.output),
    quiet: Boolean(options.quiet),
    color,
    width: tty || process.env.COLUMNS ? columns : undefined,
    write: (text) => process.stdout.write(text),
    note: (text) => {
      if (!options.quiet) process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
    },
    paint: pc.createColors(color),
  };
}

/** One column of a table: its header, how to show a row's cell, and whether only `-o wide` shows it. */
export interface Column<T> {
  header: string;
  cell: (row: T) => string;
  wide?: boolean;
  /** Colours the padded cell (state columns). */
  tint?: (text: string, row: T, paint: Out['paint']) => string;
}

/**
 * Lines of a table: every column as wide as its widest cell; when that is wider than the terminal,
 * the widest columns give way first (cells cut with "…"), never below their header.
 */
export function renderTable<T>(out: Out, columns: readonly Column<T>[], rows: readonly T[]): string {
  const shown = columns.filter((c) => !c.wide || out.format === 'wide');
  const cells = rows.map((r) => shown.map((c) => oneLine(c.cell(r))));
  const widths = shown.map((c, i) =>
    Math.max(c.header.length, ...cells.map((row) => stringWidth(row[i] ?? ''))),
  );
  // The others give way down to their header first; the first column (the name people act on)
  // only when that is not enough.
  const headers = shown.map((c) => c.header.length);
  const minimums = shown.map((c, i) => (i === 0 ? (widths[0] ?? 0) : c.header.length));
  // Three spaces between columns as kubectl; two when that is what it takes to fit.
  const natural = widths.reduce((a, b) => a + b, 0) + 3 * (widths.length - 1);
  const gap = out.width && natural > out.width ? 2 : 3;
  if (out.width) {
    fitWidths(widths, minimums, out.width, gap);
    fitWidths(widths, headers, out.width, gap);
  }
  const line = (values: string[], tint?: (i: number, padded: string) => string) =>
    values
      .map((v, i) => {
        const last = i === values.length - 1;
        const cut = cutTo(v, widths[i] ?? 0);
        const padded = last ? cut : cut + ' '.repeat((widths[i] ?? 0) - stringWidth(cut));
        return tint ? tint(i, padded) : padded;
      })
      .join(' '.repeat(gap))
      .trimEnd();
  const lines = [line(shown.map((c) => c.header))];
  cells.forEach((row, r) => {
    lines.push(
      line(row, (i, padded) => {
        const t = shown[i]?.tint;
        const item = rows[r];
        return t && out.color && item !== undefined ? t(padded, item, out.paint) : padded;
      }),
    );
  });
  return `${lines.join('\n')}\n`;
}

function fitWidths(widths: number[], minimums: number[], total: number, gap: number): void {
  const gaps = gap * (widths.length - 1);
  let over = widths.reduce((a, b) => a + b, 0) + gaps - total;
  while (over > 0) {
    let widest = -1;
    for (let i = 0; i < widths.length; i++) {
      if ((widths[i] ?? 0) > (minimums[i] ?? 0) && (widest < 0 || (widths[i] ?? 0) > (widths[widest] ?? 0))) {
        widest = i;
      }
    }
    if (widest < 0) return;
    widths[widest] = (widths[widest] ?? 0) - 1;
    over--;
  }
}

function oneLine(s: string): string {
  return s.replace(/[\r\n\t]+/g, ' ');
}

function cutTo(s: string, width: number): string {
  if (stringWidth(s) <= width) return s;
  let out = '';
  let used = 0;
  for (const ch of s) {
    const w = stringWidth(ch);
    if (used + w > width - 1) break;
    out += ch;
    used += w;
  }
  return `${out}…`;
}

/** A message in the API's JSON mapping (camelCase names, enums by name, RFC 3339 times). */
export function jsonOf<D extends DescMessage>(schema: D, message: MessageShape<D>): unknown {
  return toJson(schema, message, { alwaysEmitImplicit: false });
}

/**
 * Prints one resource or a list: a table, or JSON/YAML of the API's messages (a list as
 * `{"items": [...]}`), or `name` (one id per line, for xargs).
 */
export function printResources<D extends DescMessage>(
  out: Out,
  schema: D,
  items: readonly MessageShape<D>[],
  columns: readonly Column<MessageShape<D>>[],
  options: { single?: boolean; name: (item: MessageShape<D>) => string },
): void {
  switch (out.format) {
    case 'json':
    case 'yaml': {
      const docs = items.map((i) => jsonOf(schema, i));
      const doc = options.single ? docs[0] : { items: docs };
      out.write(out.format === 'json' ? `${JSON.stringify(doc, null, 2)}\n` : stringify(doc));
      return;
    }
    case 'name':
      for (const i of items) out.write(`${options.name(i)}\n`);
      return;
    default:
      if (items.length === 0) {
        out.note('No resources found.');
        return;
      }
      out.write(renderTable(out, columns, items));
  }
}

/** Prints any plain value as JSON or YAML (for responses that are not one resource). */
export function printDoc(out: Out, doc: unknown): void {
  out.write(out.format === 'yaml' ? stringify(doc) : `${JSON.stringify(doc, null, 2)}\n`);
}

/** kubectl's short ages: 45s, 5m12s, 42m, 5h3m, 20h, 3d4h, 12d, 2y. */
export function age(time: Timestamp | undefined, now = Date.now()): string {
  if (!time) return '-';
  return shortDuration(now - timestampMs(time));
}

export function shortDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 ? `${m}m${s % 60}s` : `${m}m`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 ? `${h}h${m % 60}m` : `${h}h`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (d < 8) return h % 24 ? `${d}d${h % 24}h` : `${d}d`;
  if (d < 365 * 2) return `${d}d`;
  return `${Math.floor(d / 365)}y`;
}

/** `k=v,k2=v2` as the API's label selector map. */
export function labelsFrom(
  values: readonly string[] | string | undefined,
  flag = '--selector',
): Record<string, string> {
  const list = values === undefined ? [] : Array.isArray(values) ? values : [values];
  const labels: Record<string, string> = {};
  for (const part of list.flatMap((v) => v.split(','))) {
    if (!part.trim()) continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`${flag} "${part}" is not key=value`);
    labels[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return labels;
}

/** `--label k=v` sets, `--label k-` removes (kubectl's label grammar), on top of `current`. */
export function editLabels(
  current: Record<string, string>,
  edits: readonly string[],
): Record<string, string> {
  const next = { ...current };
  const sets: string[] = [];
  for (const e of edits.flatMap((v) => v.split(','))) {
    if (/^[^=]+-$/.test(e.trim())) delete next[e.trim().slice(0, -1)];
    else sets.push(e);
  }
  return { ...next, ...labelsFrom(sets, '--label') };
}

/** Whether `labels` has every key=value of `selector` (for lists whose API takes no selector). */
export function labelsMatch(labels: Record<string, string>, selector: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

export function labelsText(labels: Record<string, string> | undefined): string {
  const entries = Object.entries(labels ?? {});
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join(',') : '<none>';
}

/** Enum names as people say them: RUNNING -> Running, NOT_READY -> NotReady. */
export function enumText(names: Record<number, string>, value: number, prefix = ''): string {
  const n = names[value] ?? String(value);
  const bare = prefix && n.startsWith(prefix) ? n.slice(prefix.length) : n;
  return bare
    .toLowerCase()
    .split('_')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('');
}

/** Millicores as cores: 1500 -> "1.5". */
export function coresText(millicores: bigint | number): string {
  return String(Number(millicores) / 1000);
}

/** MiB as people write sizes: 4096 -> "4Gi", 1536 -> "1536Mi". */
export function mibText(mib: bigint | number): string {
  const n = Number(mib);
  if (n === 0) return '0';
  return n >= 1024 && n % 1024 === 0 ? `${n / 1024}Gi` : `${n}Mi`;
}

/** Every non-empty line two spaces in (tables under a heading of describe). */
export function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => (l ? `  ${l}` : l))
    .join('\n');
}
