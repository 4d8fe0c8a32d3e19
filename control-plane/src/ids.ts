import { randomBytes } from 'node:crypto';

// Ids sort by creation time (millisecond prefix in base32, then randomness), so keyset pagination
// on id lists newest-last without a separate sort key.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

let lastMs = 0;
let counter = 0;

/** A new id like `dev_01hx...`: prefix, 10 chars of time, 4 of a per-ms counter, 12 random. */
export function newId(prefix: string, now = Date.now()): string {
  if (now === lastMs) counter++;
  else {
    lastMs = now;
    counter = 0;
  }
  const time = now.toString(32).padStart(10, '0');
  const seq = counter.toString(32).padStart(4, '0');
  return `${prefix}_${time}${seq}${base32(randomBytes(8)).slice(0, 12)}`;
}

/** A secret: 32 random bytes, base32, with a readable prefix (e.g. `cpk_`). */
export function newSecret(prefix: string): string {
  return `${prefix}_${base32(randomBytes(32))}`;
}
