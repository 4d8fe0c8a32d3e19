// Structure-aware inputs: messages of any protobuf-es schema, built field by field from its
// descriptor, each value either plausible (a real id of the fuzzed server, a sane name) or hostile
// (boundary numbers, unknown enum values, NUL and control characters, odd Unicode, oversize text
// and lists, out-of-range timestamps, made-up field masks and page tokens).
import {
  create,
  type DescField,
  type DescMessage,
  type Message,
  type MessageShape,
  ScalarType,
} from '@bufbuild/protobuf';
import { reflect } from '@bufbuild/protobuf/reflect';
import type { Random } from './random.js';

/** Values that reach deeper than made-up ones: ids and tokens the fuzzed server really issued. */
export interface Pool {
  readonly ids: readonly string[];
  readonly pageTokens: readonly string[];
}

const HOSTILE_STRINGS = [
  '',
  '\0',
  'a\0b',
  '\u0001\u0002\u001b[31m\u007f',
  '\t\n\r\v\f',
  '\u0085\u2028\u2029',
  '\u202eevil\u202c',
  '\ufeff',
  '\uffff\ufffe',
  '\ud800',
  'x\udc80y',
  '😀👩‍👩‍👧‍👦',
  'Ünïcödé ñame',
  '中文名字',
  "' OR 1=1 --",
  '"; drop table device; --',
  '../../../../etc/passwd',
  '%s%n%x',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the literal text is the point (log injection).
  '${jndi:ldap://x}',
  '{"a":1}',
  'null',
  '-1',
  '1e400',
  ' padded ',
  'platform',
];

// Around the limits handlers and the edge apply; rarely far beyond them.
const LONG_LENGTHS = [63, 64, 100, 128, 129, 200, 201, 256, 1024, 65_536, 65_537, 63, 129, 201, 300_000];

function hostileString(random: Random): string {
  const r = random.int(20);
  if (r < 14) return random.pick(HOSTILE_STRINGS);
  if (r < 16) return random.pick(['a', 'é', '😀', '\0']).repeat(random.pick(LONG_LENGTHS));
  // Random code units, lone surrogates and controls included.
  return String.fromCharCode(...Array.from({ length: 1 + random.int(24) }, () => random.int(0x10000)));
}

/** A plausible value for a string field, by what its name says it holds. */
function plausibleString(field: DescField, random: Random, pool: Pool): string {
  const name = field.name;
  if (name === 'page_token') {
    return pool.pageTokens.length && random.chance(0.7) ? random.pick(pool.pageTokens) : 'bm90IGEgdG9rZW4';
  }
  if (name.endsWith('_id') || name === 'sha256' || name.endsWith('_sha256')) {
    return pool.ids.length && random.chance(0.8)
      ? random.pick(pool.ids)
      : `${name.replace(/_id$/, '')}_unknown`;
  }
  if (name === 'arch' || name === 'archs') return random.pick(['arm64', 'amd64', 'riscv']);
  if (name === 'url')
    return random.pick(['https://example.invalid/hook', 'http://127.0.0.1:1/', 'not a url']);
  if (name.endsWith('path')) return random.pick(['/sdcard/a.txt', '/data/local/tmp/x', 'relative']);
  if (name === 'command') return random.pick(['id', 'getprop ro.product.model', 'echo hi; sleep 0']);
  if (name === 'container_image') return random.pick(['redroid/redroid:13.0.0-latest', 'local/stand-in:1']);
  return random.pick(['fuzz', 'rack-1', 'phone 1', 'billing-sync', 'key', 'v1', 'a.b/c-d_e']);
}

function int32(random: Random): number {
  return random.pick([
    0,
    1,
    -1,
    2,
    7,
    50,
    100,
    101,
    1000,
    1001,
    2 ** 31 - 1,
    -(2 ** 31),
    random.int(100_000),
  ]);
}

function uint32(random: Random): number {
  return random.pick([0, 1, 2, 100, 1000, 65_535, 2 ** 31, 2 ** 32 - 1, random.int(2 ** 32)]);
}

const INT64 = [0n, 1n, -1n, 100n, 2n ** 31n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n)];
const UINT64 = [0n, 1n, 1024n, 2n ** 32n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n];
const DOUBLES = [0, -0, 1, -1, 0.5, 1.5, 10, 1e308, -1e308, 5e-324, Number.NaN, Infinity, -Infinity];

function scalar(field: DescField, type: ScalarType, random: Random, pool: Pool, hostile: boolean): unknown {
  switch (type) {
    case ScalarType.STRING:
      return hostile ? hostileString(random) : plausibleString(field, random, pool);
    case ScalarType.BOOL:
      return random.chance(0.5);
    case ScalarType.BYTES:
      return random.bytes(random.pick([0, 1, 16, 64, hostile && random.chance(0.1) ? 300_000 : 1024]));
    case ScalarType.DOUBLE:
      return random.pick(DOUBLES);
    case ScalarType.FLOAT:
      return Math.fround(random.pick([...DOUBLES, 3.4e38, -3.4e38]));
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return int32(random);
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return uint32(random);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return random.chance(0.8) ? random.pick(INT64) : BigInt(random.int(1_000_000)) - 500_000n;
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return random.pick(UINT64);
  }
}

function enumValue(field: DescField & { enum: NonNullable<DescField['enum']> }, random: Random): number {
  const known = field.enum.values.map((v) => v.number);
  return random.chance(0.85) ? random.pick(known) : random.pick([-1, 99, 2 ** 31 - 1, -(2 ** 31)]);
}

/** Well-known types get values in (and just out of) their own documented ranges. */
function wellKnown(
  schema: DescMessage,
  random: Random,
  parent: DescMessage | undefined,
): Message | undefined {
  switch (schema.typeName) {
    case 'google.protobuf.Timestamp':
    case 'google.protobuf.Duration': {
      const now = BigInt(Math.floor(Date.now() / 1000));
      const seconds = random.pick([
        now + 3600n,
        now - 3600n,
        0n,
        -1n,
        253_402_300_799n,
        253_402_300_800n,
        -62_135_596_800n,
        -62_135_596_801n,
        2n ** 63n - 1n,
        -(2n ** 63n),
      ]);
      const nanos = random.pick([0, 1, 999_999_999, 1_000_000_000, -1]);
      return create(schema, { seconds, nanos } as never);
    }
    case 'google.protobuf.FieldMask': {
      // Field names of the message beside the mask (what an update mask names), and junk.
      const sibling = parent?.fields.find((f) => f.message && !f.message.typeName.startsWith('google.'));
      const names = sibling?.message?.fields.map((f) => f.name) ?? [];
      const paths = Array.from({ length: random.int(4) }, () =>
        names.length && random.chance(0.7)
          ? random.pick(names)
          : random.pick(['', 'nope', 'a.b', 'Labels', 'x\0']),
      );
      return create(schema, { paths } as never);
    }
    default:
      return undefined;
  }
}

export interface GenerateOptions {
  /** Chance that a value is hostile rather than plausible. */
  hostility: number;
  /** Chance that a repeated or map field gets thousands of entries. */
  oversize: number;
  /**
   * Roughly how many bytes of values one message may hold: once spent, no further field is set,
   * so oversize lists of oversize values stay within what a body may carry (default 1 MiB).
   */
  budget?: number;
}

/** What is left of a message's budget, shared by the whole tree. */
interface Spend {
  left: number;
}

function cost(value: unknown): number {
  if (typeof value === 'string') return 2 + value.length;
  if (value instanceof Uint8Array) return 2 + value.byteLength;
  return 4;
}

const MAX_DEPTH = 5;

/** A message of `schema` with a random selection of its fields set. */
export function generate<D extends DescMessage>(
  schema: D,
  random: Random,
  pool: Pool,
  options: GenerateOptions,
  depth = 0,
  parent?: DescMessage,
  spend: Spend = { left: options.budget ?? 1024 * 1024 },
): MessageShape<D> {
  const special = wellKnown(schema, random, parent);
  if (special) return special as MessageShape<D>;
  const message = reflect(schema, create(schema), false);
  if (depth >= MAX_DEPTH) return message.message as MessageShape<D>;
  for (const member of schema.members) {
    if (spend.left <= 0) break;
    const field = member.kind === 'oneof' ? random.pick(member.fields) : member;
    if (!random.chance(member.kind === 'oneof' ? 0.7 : 0.6)) continue;
    const value = (f: DescField, type?: ScalarType): unknown => {
      const hostile = random.chance(options.hostility);
      if (f.message && type === undefined) {
        const nested = generate(f.message, random, pool, options, depth + 1, schema, spend);
        return reflect(f.message, nested, false);
      }
      if (f.enum && type === undefined) return enumValue(f as never, random);
      const made = scalar(f, type ?? ScalarType.STRING, random, pool, hostile && spend.left > 65_536);
      spend.left -= cost(made);
      return made;
    };
    const count = () => (random.chance(options.oversize) ? random.pick([1001, 5000]) : random.int(4));
    switch (field.fieldKind) {
      case 'scalar':
        message.set(field, value(field, field.scalar));
        break;
      case 'enum':
      case 'message':
        message.set(field, value(field));
        break;
      case 'list': {
        const list = message.get(field);
        const items = count();
        for (let i = 0; i < items && spend.left > 0; i++) {
          list.add(field.listKind === 'scalar' ? value(field, field.scalar) : (value(field) as never));
        }
        break;
      }
      case 'map': {
        const map = message.get(field);
        const entries = count();
        for (let i = 0; i < entries && spend.left > 0; i++) {
          const key = scalar(field, field.mapKey, random, pool, random.chance(options.hostility));
          spend.left -= cost(key);
          const item =
            field.mapKind === 'scalar'
              ? value(field, field.scalar)
              : field.mapKind === 'enum'
                ? enumValue(field as never, random)
                : value(field);
          map.set(key as never, item as never);
        }
        break;
      }
    }
  }
  return message.message as MessageShape<D>;
}
