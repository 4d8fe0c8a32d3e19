// Raw mutations of a valid request body: byte-level damage for either codec, and JSON-level
// damage (wrong types, unknown fields, nulls, odd numbers) that keeps the text well-formed.
import type { Random } from './random.js';

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xbf, 0xc0, 0xc1, 0xed, 0xf4, 0xf5, 0xfe, 0xff];

/** A varint that claims far more bytes than follow, or is longer than ten bytes. */
function hostileVarint(random: Random): Uint8Array {
  return random.pick([
    Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f),
    Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
    Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x80),
  ]);
}

/** One to four byte-level mutations of `body`, and what they were (for the failure report). */
export function mutateBytes(body: Uint8Array, random: Random): { body: Uint8Array; how: string } {
  let bytes = Array.from(body);
  const steps: string[] = [];
  const rounds = 1 + random.int(4);
  for (let k = 0; k < rounds; k++) {
    const at = bytes.length ? random.int(bytes.length) : 0;
    switch (random.int(9)) {
      case 0:
        if (bytes.length) bytes[at] = (bytes[at] ?? 0) ^ (1 << random.int(8));
        steps.push(`flip@${at}`);
        break;
      case 1:
        if (bytes.length) bytes[at] = random.pick(INTERESTING_BYTES);
        steps.push(`set@${at}`);
        break;
      case 2:
        bytes.splice(at, 0, ...random.bytes(1 + random.int(8)));
        steps.push(`insert@${at}`);
        break;
      case 3:
        bytes.splice(at, 1 + random.int(8));
        steps.push(`delete@${at}`);
        break;
      case 4:
        bytes = bytes.slice(0, at);
        steps.push(`truncate@${at}`);
        break;
      case 5: {
        const length = 1 + random.int(Math.min(32, Math.max(1, bytes.length - at)));
        bytes.splice(at, 0, ...bytes.slice(at, at + length));
        steps.push(`duplicate@${at}`);
        break;
      }
      case 6:
        bytes.splice(at, 0, ...hostileVarint(random));
        steps.push(`varint@${at}`);
        break;
      case 7:
        bytes.push(...random.bytes(1 + random.int(16)));
        steps.push('append');
        break;
      default:
        bytes = Array.from(random.bytes(random.int(64)));
        steps.push('replace');
    }
  }
  return { body: Uint8Array.from(bytes), how: steps.join(',') };
}

function oddJsonValue(random: Random): unknown {
  return random.pick([
    null,
    true,
    -1,
    1.5,
    Number.MAX_VALUE,
    '1e400',
    '-0',
    'NaN',
    '18446744073709551616',
    '',
    '\u0000',
    [],
    [null],
    {},
    { nested: { deeper: [1, 2, 3] } },
    'x'.repeat(1000),
  ]);
}

/** Damage to the JSON form of a message that keeps it JSON, so the decoder's type checks are hit. */
export function mutateJson(json: unknown, random: Random): { json: unknown; how: string } {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { json: random.chance(0.5) ? oddJsonValue(random) : {}, how: 'top' };
  }
  const copy: Record<string, unknown> = { ...(json as Record<string, unknown>) };
  const keys = Object.keys(copy);
  const key = keys.length ? random.pick(keys) : undefined;
  switch (random.int(5)) {
    case 0:
      if (key) copy[key] = oddJsonValue(random);
      return { json: copy, how: `value ${key}` };
    case 1:
      copy[random.pick(['unknownField', 'request_id', '$typeName', '__proto__', 'constructor'])] =
        oddJsonValue(random);
      return { json: copy, how: 'extra field' };
    case 2:
      if (key) copy[key] = [copy[key], copy[key]];
      return { json: copy, how: `array ${key}` };
    case 3:
      return { json: oddJsonValue(random), how: 'replaced' };
    default: {
      if (key && typeof copy[key] === 'object' && copy[key] !== null) {
        const inner = mutateJson(copy[key], random);
        copy[key] = inner.json;
        return { json: copy, how: `${key}.${inner.how}` };
      }
      if (key) delete copy[key];
      return { json: copy, how: `delete ${key}` };
    }
  }
}
