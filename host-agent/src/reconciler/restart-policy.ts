import type { RestartPolicyName } from '@cphone/proto';

export interface ExitFacts {
  readonly policy: RestartPolicyName;
  /** `exit`: the container stopped on its own; `boot`: Android did not boot in time (or the probe failed). */
  readonly failure: 'exit' | 'boot';
  readonly exitCode: number | undefined;
  /** Consecutive failed runs including this one. */
  readonly crashes: number;
  /** More consecutive failures than this is a crash loop. */
  readonly maxRestarts: number;
  readonly baseDelayMs: number;
  readonly capDelayMs: number;
}

export type ExitDecision =
  | { readonly action: 'restart'; readonly delayMs: number; readonly reason: string }
  | { readonly action: 'halt'; readonly state: 'stopped' | 'error'; readonly reason: string };

/** What to do when a device that should run is found not running (kubelet's restart policy rules). */
export function decideAfterExit(facts: ExitFacts): ExitDecision {
  const failed = facts.failure === 'boot' || (facts.exitCode !== undefined && facts.exitCode !== 0);
  const reason = facts.failure === 'boot' ? 'BOOT_TIMEOUT' : 'EXITED';
  const restart = facts.policy === 'always' || (facts.policy === 'on_failure' && failed);
  if (!restart) return { action: 'halt', state: failed ? 'error' : 'stopped', reason };
  if (facts.crashes > facts.maxRestarts) return { action: 'halt', state: 'error', reason: 'CRASH_LOOP' };
  const delayMs = Math.min(facts.capDelayMs, facts.baseDelayMs * 2 ** Math.max(0, facts.crashes - 1));
  return { action: 'restart', delayMs, reason };
}
