import { Code } from '@connectrpc/connect';

/** A Connect code as the audit log spells it: snake_case, "ok" on success ("not_found", …). */
export function outcomeOf(code: Code | undefined): string {
  if (code === undefined) return 'ok';
  const name = Code[code] ?? String(code);
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

/** Every outcome an audit row may hold. */
export const OUTCOMES: readonly string[] = [
  'ok',
  ...Object.values(Code)
    .filter((v): v is Code => typeof v === 'number')
    .map(outcomeOf),
];
