import { agentv1 } from '@cphone/proto';
import {
  type AdbEndpoint,
  DeviceNotFoundError,
  ImagePullError,
  InvalidSpecError,
  type RuntimeDevice,
  RuntimeUnavailableError,
} from '../runtime/index.js';
import type { Backoff } from '../session/backoff.js';
import { endpointString, type Observation } from './observed.js';

/** What the reconciler remembers about one device between converges. */
export interface DeviceRecord {
  readonly deviceId: string;
  tenantId: string;
  /** Last reported observation; undefined before the first. */
  observation: Observation | undefined;
  /**
   * What the agent last made the container do: `running` (started, an exit is a failure),
   * `stopped` (stopped on purpose), `restart` (failed, waiting out the restart delay), or
   * undefined (freshly created, or nothing yet).
   */
  intent: 'running' | 'stopped' | 'restart' | undefined;
  /** restart_generation the container reflects. */
  appliedGeneration: number | undefined;
  /** Restarts since the container was created. */
  restartCount: number;
  /** Consecutive failed runs. */
  crashes: number;
  lastStartMs: number;
  /** desiredKey() at which the agent gave up (crash loop, NEVER policy, invalid spec). */
  haltKey: string | undefined;
  /** No start before this time (restart delay). */
  notBefore: number;
  /** Delays between retries of failed runtime operations. */
  retry: Backoff;
  probe:
    | { key: string; controller: AbortController; outcome: 'pending' | 'booted' | 'failed'; error?: string }
    | undefined;
  adb: AdbEndpoint | undefined;
  /** BOOTING or RUNNING as last reported. */
  live: boolean;
  /** A DeviceRemove named it: delete even while the rest of the desired set is unknown. */
  removeRequested: boolean;
}

export interface Observe {
  readonly state: agentv1.DeviceState;
  readonly current?: RuntimeDevice | undefined;
  readonly specRevision?: number;
  readonly reason?: string;
  readonly message?: string;
  readonly containerId?: string;
}

/** The observation to report, filling what the caller did not say from the record and the runtime. */
export function observe(rec: DeviceRecord, o: Observe): Observation {
  const live = o.state === agentv1.DeviceState.BOOTING || o.state === agentv1.DeviceState.RUNNING;
  return {
    state: o.state,
    reason: o.reason ?? '',
    message: o.message ?? '',
    containerId: o.containerId ?? o.current?.runtimeId ?? rec.observation?.containerId ?? '',
    adbEndpoint: live ? endpointString(o.current?.adb ?? rec.adb) : '',
    startedAt: live ? (o.current?.startedAt ?? rec.observation?.startedAt) : undefined,
    specRevision: o.specRevision ?? o.current?.specRevision ?? rec.observation?.specRevision ?? 0,
    restartGeneration: rec.appliedGeneration ?? 0,
    restartCount: rec.restartCount,
  };
}

/** A runtime call that failed while converging: reported as ERROR with a reason. */
export class OperationError extends Error {
  override readonly name = 'OperationError';
  constructor(
    readonly operation: string,
    readonly deviceId: string,
    override readonly cause: unknown,
  ) {
    super(`${operation} ${deviceId}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** The reason reported for a failure, and whether retrying the same instruction can help. */
export function operationFailure(err: unknown): { reason: string; message: string; permanent: boolean } {
  const cause = err instanceof OperationError ? err.cause : err;
  const message = err instanceof Error ? err.message : String(err);
  if (cause instanceof InvalidSpecError) return { reason: 'INVALID_SPEC', message, permanent: true };
  if (cause instanceof ImagePullError) return { reason: 'IMAGE_PULL_FAILED', message, permanent: false };
  if (cause instanceof RuntimeUnavailableError)
    return { reason: 'RUNTIME_UNAVAILABLE', message, permanent: false };
  if (cause instanceof DeviceNotFoundError) return { reason: 'CONTAINER_GONE', message, permanent: false };
  return { reason: 'RUNTIME_ERROR', message, permanent: false };
}
