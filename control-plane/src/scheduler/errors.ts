/**
 * The scheduler's one error type. It lives here, not in ../errors.ts, so the pure scheduler imports
 * nothing outside its folder; the API edge (api/errors.ts) recognises it by its name and maps it to
 * INVALID_ARGUMENT.
 */
export class InvalidArgumentError extends Error {
  readonly code = 'invalid_argument' as const;
  override readonly name = 'InvalidArgumentError';

  constructor(
    /** Dotted path of the offending field, e.g. `count` or `hosts[3].capacity.memoryMib`. */
    readonly field: string,
    readonly value: unknown,
    expectation: string,
  ) {
    super(`${field} ${expectation}, got ${describe(value)}`);
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return typeof value;
  }
}
