import { InvalidArgumentError } from '../errors.js';

/** Tenants allow this many; API keys (and any new named resource) follow them. */
export const MAX_DISPLAY_NAME_CHARS = 200;

// C0 and C1 controls and DEL: a name is one line of text, and control sequences in a name would
// reach the terminals that list it (the cphone CLI prints names as they are).
const CONTROL = /\p{Cc}/u;

/** A display name as stored: trimmed, 1..MAX_DISPLAY_NAME_CHARS characters, no control characters. */
export function validDisplayName(name: string, field = 'display_name'): string {
  const trimmed = name.trim();
  if (!trimmed || trimmed.length > MAX_DISPLAY_NAME_CHARS) {
    throw new InvalidArgumentError(field, name, `must be 1-${MAX_DISPLAY_NAME_CHARS} characters`);
  }
  if (CONTROL.test(trimmed))
    throw new InvalidArgumentError(field, name, 'must not contain control characters');
  return trimmed;
}
