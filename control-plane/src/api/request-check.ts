// The edge's rules for every string, list and map of every request, whatever the method: checked
// on the decoded message by reflection before any handler runs, so a handler (and the database
// behind it) only ever sees text PostgreSQL can store. Rules of meaning (what a name may look like,
// which ids exist) stay with the handlers.
import type { DescField, DescMessage, Message } from '@bufbuild/protobuf';
import { type ReflectMessage, reflect } from '@bufbuild/protobuf/reflect';
import { InvalidArgumentError, quote } from '../errors.js';

/**
 * Bounds for fields whose proto gives no limit of its own. They are far above any legitimate value
 * (ids, names, labels, shell commands, text typed into a phone) and only keep one request from
 * costing the server an unbounded amount of work; the handlers keep their tighter per-field limits.
 */
export const MAX_STRING_CHARS = 64 * 1024;
/** Entries of one repeated or map field. */
export const MAX_ENTRIES = 1000;

// google.protobuf.Timestamp documents its range, 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z; the
// binary codec does not enforce it, and a Date made from a value outside it fails deep in a handler.
const TIMESTAMP_MIN_SECONDS = -62_135_596_800n;
const TIMESTAMP_MAX_SECONDS = 253_402_300_799n;
// Durations get a bound of the edge's own, far inside the +-10,000 years Duration documents: a
// request's duration is added to now (drain timeouts, TTLs), and a sum past 9999 is stored but can
// never be sent back, so every later read of that row would fail. No API duration means a century.
const DURATION_MAX_SECONDS = 100n * 366n * 24n * 3600n;

// A lone surrogate: text that has no UTF-8 form (JSON escapes such as "\udc80", or an in-process
// caller's string). With the u flag a well-formed pair is one astral code point, not Cs.
const LONE_SURROGATE = /\p{Cs}/u;

/** `parent.field`, `parent[3]`, `parent["key"]`: the field path an error names (proto field names). */
export function fieldPath(parent: string, field: string): string {
  return parent ? `${parent}.${field}` : field;
}

/** Why a string breaks the edge rules, or undefined. */
export function stringProblem(value: string): string | undefined {
  if (value.length > MAX_STRING_CHARS) return `must be at most ${MAX_STRING_CHARS} characters`;
  if (value.includes('\0')) return 'must not contain a NUL character';
  if (LONE_SURROGATE.test(value)) return 'must be valid UTF-8';
  return undefined;
}

function checkString(path: string, value: string): InvalidArgumentError | undefined {
  const problem = stringProblem(value);
  return problem ? new InvalidArgumentError(path, value, problem) : undefined;
}

function checkWellKnown(path: string, message: ReflectMessage): InvalidArgumentError | undefined {
  const { typeName } = message.desc;
  if (typeName !== 'google.protobuf.Timestamp' && typeName !== 'google.protobuf.Duration') return undefined;
  const value = message.message as unknown as { seconds: bigint; nanos: number };
  const seconds = BigInt(value.seconds);
  const inRange =
    typeName === 'google.protobuf.Timestamp'
      ? seconds >= TIMESTAMP_MIN_SECONDS &&
        seconds <= TIMESTAMP_MAX_SECONDS &&
        value.nanos >= 0 &&
        value.nanos <= 999_999_999
      : seconds >= -DURATION_MAX_SECONDS &&
        seconds <= DURATION_MAX_SECONDS &&
        Math.abs(value.nanos) <= 999_999_999 &&
        (seconds === 0n || value.nanos === 0 || seconds > 0n === value.nanos > 0);
  if (inRange) return undefined;
  return new InvalidArgumentError(
    path,
    { seconds: String(value.seconds), nanos: value.nanos },
    typeName === 'google.protobuf.Timestamp'
      ? 'must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z'
      : 'must be a duration of at most 100 years either way',
  );
}

function checkValue(path: string, field: DescField, value: unknown): InvalidArgumentError | undefined {
  if (typeof value === 'string') return checkString(path, value);
  if (field.message && typeof value === 'object' && value !== null && 'desc' in value) {
    return walk(path, value as ReflectMessage);
  }
  return undefined;
}

function walk(path: string, message: ReflectMessage): InvalidArgumentError | undefined {
  const wellKnown = checkWellKnown(path, message);
  if (wellKnown) return wellKnown;
  for (const field of message.fields) {
    if (!message.isSet(field)) continue;
    const at = fieldPath(path, field.name);
    switch (field.fieldKind) {
      case 'scalar':
      case 'enum':
      case 'message': {
        const problem = checkValue(at, field, message.get(field));
        if (problem) return problem;
        break;
      }
      case 'list': {
        const list = message.get(field);
        if (list.size > MAX_ENTRIES)
          return new InvalidArgumentError(at, `${list.size} entries`, `must have at most ${MAX_ENTRIES}`);
        for (const [index, item] of list.entries()) {
          const problem = checkValue(`${at}[${index}]`, field, item);
          if (problem) return problem;
        }
        break;
      }
      case 'map': {
        const map = message.get(field);
        if (map.size > MAX_ENTRIES)
          return new InvalidArgumentError(at, `${map.size} entries`, `must have at most ${MAX_ENTRIES}`);
        for (const [key, item] of map) {
          const entry = `${at}[${quote(key)}]`;
          const keyProblem = typeof key === 'string' ? stringProblem(key) : undefined;
          if (keyProblem) return new InvalidArgumentError(entry, key, `key ${keyProblem}`);
          const problem = checkValue(entry, field, item);
          if (problem) return problem;
        }
        break;
      }
    }
  }
  return undefined;
}

/**
 * The first field of `message` that breaks the edge rules, as the error the caller gets (naming the
 * field path, e.g. `requests[2].labels["a\u0000"]`), or undefined when the message passes.
 */
export function checkRequest(schema: DescMessage, message: Message): InvalidArgumentError | undefined {
  return walk('', reflect(schema, message, false));
}
