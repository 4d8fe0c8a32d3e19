// What Connect's decoders get wrong for the API: a protobuf binary body that does not decode (bad
// UTF-8 in a string, truncated or garbage bytes) comes back from Connect as INTERNAL, and a JSON
// body with bytes that are not UTF-8 is decoded with U+FFFD in their place and accepted. These
// checks run on the raw body first, so both codecs refuse such a body as INVALID_ARGUMENT naming
// the field where the bad text sits, as request-check.ts does for decoded messages.
import { isUtf8 } from 'node:buffer';
import { type DescField, type DescMessage, fromBinary, ScalarType } from '@bufbuild/protobuf';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { InvalidArgumentError, quote } from '../errors.js';
import { fieldPath } from './request-check.js';

const NOT_UTF8 = 'must be valid UTF-8';
const MAX_DEPTH = 100;
const lossy = new TextDecoder();

function badText(path: string, bytes: Uint8Array): InvalidArgumentError {
  return new InvalidArgumentError(path, lossy.decode(bytes), NOT_UTF8);
}

/** The path of the first string whose bytes are not UTF-8, walking the wire form with the schema. */
function findBadUtf8(schema: DescMessage, bytes: Uint8Array, path: string, depth: number) {
  if (depth > MAX_DEPTH) return undefined;
  const reader = new BinaryReader(bytes);
  const seen = new Map<number, number>();
  while (reader.pos < reader.len) {
    const [number, wireType] = reader.tag();
    const field = schema.fields.find((f) => f.number === number);
    if (!field || wireType !== WireType.LengthDelimited) {
      reader.skip(wireType, number);
      continue;
    }
    const data = reader.bytes();
    const index = seen.get(number) ?? 0;
    seen.set(number, index + 1);
    const found = checkField(field, data, path, index, depth);
    if (found) return found;
  }
  return undefined;
}

function checkField(
  field: DescField,
  data: Uint8Array,
  path: string,
  index: number,
  depth: number,
): InvalidArgumentError | undefined {
  const at = fieldPath(path, field.name);
  switch (field.fieldKind) {
    case 'scalar':
      return field.scalar === ScalarType.STRING && !isUtf8(data) ? badText(at, data) : undefined;
    case 'message':
      return findBadUtf8(field.message, data, at, depth + 1);
    case 'list':
      if (field.listKind === 'message') return findBadUtf8(field.message, data, `${at}[${index}]`, depth + 1);
      // Packed numbers are length-delimited too; only strings carry text.
      return field.listKind === 'scalar' && field.scalar === ScalarType.STRING && !isUtf8(data)
        ? badText(`${at}[${index}]`, data)
        : undefined;
    case 'map':
      return checkMapEntry(field, data, at, depth);
    default:
      return undefined;
  }
}

function checkMapEntry(field: DescField & { fieldKind: 'map' }, data: Uint8Array, at: string, depth: number) {
  const reader = new BinaryReader(data);
  let key: Uint8Array | undefined;
  let value: Uint8Array | undefined;
  while (reader.pos < reader.len) {
    const [number, wireType] = reader.tag();
    if (wireType === WireType.LengthDelimited && (number === 1 || number === 2)) {
      if (number === 1) key = reader.bytes();
      else value = reader.bytes();
    } else {
      reader.skip(wireType, number);
    }
  }
  const stringKey = field.mapKey === ScalarType.STRING;
  if (stringKey && key && !isUtf8(key))
    return new InvalidArgumentError(
      `${at}[${quote(lossy.decode(key))}]`,
      lossy.decode(key),
      `key ${NOT_UTF8}`,
    );
  const entry = `${at}[${stringKey ? quote(key ? lossy.decode(key) : '') : '…'}]`;
  if (!value) return undefined;
  if (field.mapKind === 'message') return findBadUtf8(field.message, value, entry, depth + 1);
  if (field.mapKind === 'scalar' && field.scalar === ScalarType.STRING && !isUtf8(value))
    return badText(entry, value);
  return undefined;
}

/**
 * Why a protobuf binary body cannot be a `schema` message, or undefined when it decodes. A string
 * that is not UTF-8 is named by its field path; other damage is named as the request body.
 */
export function checkBinaryBody(schema: DescMessage, body: Uint8Array): InvalidArgumentError | undefined {
  try {
    fromBinary(schema, body);
    return undefined;
  } catch (error) {
    let found: InvalidArgumentError | undefined;
    try {
      found = findBadUtf8(schema, body, '', 0);
    } catch {
      // The framing is broken as well: nothing more precise to say than the decoder's reason.
    }
    return (
      found ??
      new InvalidArgumentError(
        'request',
        `${body.byteLength} bytes`,
        `is not a ${schema.typeName} in the protobuf binary format (${(error as Error).message})`,
      )
    );
  }
}

/**
 * Bytes that are not UTF-8 become lone surrogates (U+DC80..U+DCFF, one per byte), which no valid
 * text contains, so the JSON can still be parsed and the string that held them found.
 */
function decodeMarkingBadBytes(bytes: Uint8Array): string {
  let out = '';
  let start = 0;
  let i = 0;
  while (i < bytes.length) {
    const length = utf8SequenceLength(bytes, i);
    if (length > 0) {
      i += length;
      continue;
    }
    out += lossy.decode(bytes.subarray(start, i)) + String.fromCharCode(0xdc00 | (bytes[i] ?? 0));
    i += 1;
    start = i;
  }
  return out + lossy.decode(bytes.subarray(start));
}

/** The length of the well-formed UTF-8 sequence at `i` (RFC 3629, table 3-7), or 0. */
function utf8SequenceLength(b: Uint8Array, i: number): number {
  const b0 = b[i] ?? 0;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => {
    const v = b[i + k];
    return v !== undefined && v >= lo && v <= hi;
  };
  if (b0 < 0x80) return 1;
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    const lo = b0 === 0xe0 ? 0xa0 : 0x80;
    const hi = b0 === 0xed ? 0x9f : 0xbf;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    const lo = b0 === 0xf0 ? 0x90 : 0x80;
    const hi = b0 === 0xf4 ? 0x8f : 0xbf;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

const LONE_SURROGATE = /\p{Cs}/u;

function jsonField(schema: DescMessage, key: string): DescField | undefined {
  return schema.fields.find((f) => f.jsonName === key || f.name === key);
}

interface Found {
  path: string;
  text: string;
}

/** The first string (or map key) in a parsed JSON request that holds a lone surrogate. */
function findLoneSurrogate(
  schema: DescMessage | undefined,
  value: unknown,
  path: string,
  depth: number,
): Found | undefined {
  if (depth > MAX_DEPTH) return undefined;
  if (typeof value === 'string') return LONE_SURROGATE.test(value) ? { path, text: value } : undefined;
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const found = findLoneSurrogate(schema, item, `${path}[${i}]`, depth + 1);
      if (found) return found;
    }
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [key, item] of Object.entries(value)) {
    const field = schema ? jsonField(schema, key) : undefined;
    const at = fieldPath(path, field ? field.name : key);
    if (LONE_SURROGATE.test(key)) return { path: at, text: key };
    if (field?.fieldKind === 'map' && typeof item === 'object' && item !== null) {
      for (const [mapKey, mapValue] of Object.entries(item)) {
        const entry = `${at}[${quote(mapKey)}]`;
        if (LONE_SURROGATE.test(mapKey)) return { path: entry, text: mapKey };
        const nested = field.mapKind === 'message' ? field.message : undefined;
        const found = findLoneSurrogate(nested, mapValue, entry, depth + 1);
        if (found) return found;
      }
      continue;
    }
    const found = findLoneSurrogate(field?.message, item, at, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/**
 * Why a JSON body cannot be a `schema` message because of its text, or undefined (Connect's own
 * decoder reports everything else). Text that is not UTF-8, as raw bytes or as a JSON escape of a
 * lone surrogate, is named by its field path.
 */
export function checkJsonBody(schema: DescMessage, body: Uint8Array): InvalidArgumentError | undefined {
  const buffer = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const valid = isUtf8(buffer);
  if (valid && buffer.indexOf('\\ud') < 0 && buffer.indexOf('\\uD') < 0) return undefined;
  const text = valid ? buffer.toString('utf8') : decodeMarkingBadBytes(body);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const found = parsed === undefined ? undefined : findLoneSurrogate(schema, parsed, '', 0);
  if (found) {
    // Shown with U+FFFD where the bad bytes were: the error message itself must be valid text.
    return new InvalidArgumentError(
      found.path || 'request',
      found.text.replace(/\p{Cs}/gu, '\ufffd'),
      NOT_UTF8,
    );
  }
  // Bad bytes outside any string value (or JSON that does not parse): still not a UTF-8 body.
  return valid
    ? undefined
    : new InvalidArgumentError('request', `${body.byteLength} bytes`, 'must be UTF-8 JSON');
}
