/** PostgreSQL's deadlock_detected and serialization_failure: the transaction may simply run again. */
const RETRYABLE = new Set(['40P01', '40001']);

export function isRetryableConflict(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    'code' in error &&
    typeof (error as { code: unknown }).code === 'string' &&
    RETRYABLE.has((error as { code: string }).code)
  );
}

/**
 * Runs a whole transaction again when PostgreSQL aborted it as a deadlock victim. The plan applier
 * locks hosts in id order within a round, but a later round adds locks to those it holds, so two
 * appliers racing on a nearly full fleet can still cross; the victim's work was rolled back, so
 * running it again is safe.
 */
export async function retryOnConflict<T>(run: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (attempt >= attempts || !isRetryableConflict(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
    }
  }
}
