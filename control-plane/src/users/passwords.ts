import { randomBytes } from 'node:crypto';
import { hash, verify } from '@node-rs/argon2';
import { InvalidArgumentError } from '../errors.js';

export const MIN_PASSWORD_CHARS = 10;
export const MAX_PASSWORD_CHARS = 256;
const MAX_EMAIL_CHARS = 254;

/**
 * A password as accepted: 10-256 characters. The error names the field and the length, never the
 * password.
 */
export function validPassword(password: string, field = 'password'): string {
  if (password.length < MIN_PASSWORD_CHARS || password.length > MAX_PASSWORD_CHARS) {
    throw new InvalidArgumentError(
      field,
      `${password.length} characters`,
      `must be ${MIN_PASSWORD_CHARS}-${MAX_PASSWORD_CHARS} characters`,
    );
  }
  return password;
}

/** The email as stored and compared: trimmed, lower case. */
export function normalEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** A normalised email with one "@" and something on each side of it (admin@localhost is one). */
export function validEmail(email: string, field = 'email'): string {
  const normal = normalEmail(email);
  if (normal.length > MAX_EMAIL_CHARS || !/^[^\s@\p{Cc}]+@[^\s@\p{Cc}]+$/u.test(normal)) {
    throw new InvalidArgumentError(
      field,
      email,
      `must be an email address of at most ${MAX_EMAIL_CHARS} characters`,
    );
  }
  return normal;
}

/** argon2id with the library's defaults (19 MiB, 2 passes: OWASP's recommendation), as a PHC string. */
export function hashPassword(password: string): Promise<string> {
  return hash(password);
}

// Verified against when the email is unknown, so an unknown email costs the same time as a wrong
// password and answer times tell nothing about which accounts exist.
let dummy: Promise<string> | undefined;

/** True when `password` matches `stored`; with no stored hash, verifies against a dummy and says false. */
export async function verifyPassword(stored: string | undefined, password: string): Promise<boolean> {
  dummy ??= hash(randomBytes(16).toString('hex'));
  const against = stored ?? (await dummy);
  const ok = await verify(against, password).catch(() => false);
  return ok && stored !== undefined;
}
