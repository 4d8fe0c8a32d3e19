import { InvalidArgumentError } from '../errors.js';
import { ARCHES } from '../scheduler/index.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const LABEL_KEY = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$/;
/** Beyond this, overcommit stops being a tuning knob and becomes a way to lose phones to OOM. */
export const MAX_OVERCOMMIT = 10;

export function validHostName(name: string, field = 'name'): string {
  if (!NAME.test(name)) {
    throw new InvalidArgumentError(
      field,
      name,
      'must be 1-63 letters, digits, ".", "_" or "-", starting alphanumeric',
    );
  }
  return name;
}

export function validArch(arch: string, field = 'arch'): string {
  if (!(ARCHES as readonly string[]).includes(arch)) {
    throw new InvalidArgumentError(field, arch, `must be one of ${ARCHES.join(', ')}`);
  }
  return arch;
}

export function validLabels(labels: Record<string, string>, field = 'labels'): Record<string, string> {
  const entries = Object.entries(labels);
  if (entries.length > 64) throw new InvalidArgumentError(field, entries.length, 'at most 64 labels');
  for (const [key, value] of entries) {
    if (!LABEL_KEY.test(key)) {
      throw new InvalidArgumentError(
        `${field}.key`,
        key,
        'must be 1-63 letters, digits, ".", "_", "/" or "-"',
      );
    }
    if (value.length > 256)
      throw new InvalidArgumentError(`${field}[${key}]`, value, 'at most 256 characters');
  }
  return labels;
}

/** 0 (unset) means 1.0; otherwise 1.0 ..= MAX_OVERCOMMIT. */
export function validRatio(ratio: number, field: string): number {
  if (ratio === 0) return 1;
  if (!Number.isFinite(ratio) || ratio < 1 || ratio > MAX_OVERCOMMIT) {
    throw new InvalidArgumentError(field, ratio, `must be between 1.0 and ${MAX_OVERCOMMIT} (0 means 1.0)`);
  }
  return ratio;
}

/** True for PostgreSQL's unique_violation, from pg and from PGlite alike. */
export function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '23505';
}
