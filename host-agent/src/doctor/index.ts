// `cphone-agent doctor`: checks that this host can run phones for the control plane, and says how to
// fix what it cannot. Exit code 0 when no check fails (warnings allowed), 1 when one does, 2 on bad
// arguments.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ConfigError, environmentWith, parseEnvFile } from '../config.js';
import { DesiredStore } from '../reconciler/desired-store.js';
import {
  diskCheck,
  firewallCheck,
  portsCheck,
  settingsCheck,
  sfuWorkerCheck,
  timeSyncCheck,
} from './host-checks.js';
import {
  binderCheck,
  cgroupCheck,
  inotifyCheck,
  kernelCheck,
  kernelSettingsCheck,
  sharedMemoryCheck,
} from './kernel-checks.js';
import { realProbes } from './probes.js';
import { controlPlaneCheck, imageCheck, runtimeCheck } from './remote-checks.js';
import { readSettings } from './settings.js';
import type { Check, CheckResult, DoctorContext, DoctorProbes } from './types.js';

export { inotifyNeeded } from './kernel-checks.js';
export type { CheckResult, CheckStatus, DoctorContext, DoctorProbes } from './types.js';

/** Every check, in the order printed. */
export const CHECKS: readonly Check[] = [
  settingsCheck,
  kernelCheck,
  binderCheck,
  sharedMemoryCheck,
  cgroupCheck,
  inotifyCheck,
  kernelSettingsCheck,
  diskCheck,
  runtimeCheck,
  imageCheck,
  timeSyncCheck,
  portsCheck,
  firewallCheck,
  sfuWorkerCheck,
  controlPlaneCheck,
];

const DEFAULT_ENV_FILE = '/etc/cphone/agent.env';

/** Runs the checks one after another (ports are probed by binding them: no two checks at once). */
export async function runChecks(
  ctx: DoctorContext,
  checks: readonly Check[] = CHECKS,
): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const [i, check] of checks.entries()) {
    try {
      results.push(await check(ctx));
    } catch (err) {
      results.push({
        id: check.name || `check-${i}`,
        status: 'fail',
        detail: `the check itself failed: ${(err as Error).message}`,
      });
    }
  }
  return results;
}

export function renderText(results: readonly CheckResult[]): string {
  const width = Math.max(...results.map((r) => r.id.length));
  const lines = results.flatMap((r) => {
    const mark = r.status === 'fail' ? 'FAIL' : r.status;
    const out = [`${mark.padEnd(4)}  ${r.id.padEnd(width)}  ${r.detail}`];
    if (r.fix !== undefined && r.status !== 'ok') out.push(`${''.padEnd(6 + width)}  fix: ${r.fix}`);
    return out;
  });
  const count = (s: string) => results.filter((r) => r.status === s).length;
  lines.push('', `${count('fail')} failed, ${count('warn')} warnings, ${count('ok')} ok`);
  return `${lines.join('\n')}\n`;
}

function workerPath(): string {
  try {
    const main = createRequire(import.meta.url).resolve('mediasoup');
    return join(dirname(main), '..', '..', 'worker', 'out', 'Release', 'mediasoup-worker');
  } catch {
    return 'node_modules/mediasoup/worker/out/Release/mediasoup-worker (mediasoup is not installed)';
  }
}

async function desiredImages(dataDir: string): Promise<string[]> {
  const desired = await new DesiredStore(dataDir).load().catch(() => undefined);
  return (desired?.devices ?? []).map((d) => d.spec?.imageRef ?? '').filter(Boolean);
}

const USAGE = `usage: cphone-agent doctor [--json] [--env-file FILE] [--image REF]...
  --env-file FILE  the settings file (default ${DEFAULT_ENV_FILE} when it exists); the environment overrides it
  --image REF      a phone image that must be in the engine (repeatable; the data dir's desired phones add theirs)
  --json           one JSON document: {"ok": bool, "checks": [{id, status, detail, fix}]}
`;

export interface DoctorIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly probes?: DoctorProbes;
  /** The process environment (tests pass their own). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export async function doctorMain(argv: readonly string[], io: DoctorIo): Promise<number> {
  let json = false;
  let envFile: string | undefined;
  let explicitFile = false;
  const images: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new ConfigError(arg as string, v, 'needs a value');
      return v;
    };
    try {
      if (arg === '--json') json = true;
      else if (arg === '--env-file') {
        envFile = value();
        explicitFile = true;
      } else if (arg === '--image') images.push(value());
      else if (arg === '--help' || arg === '-h') {
        io.stdout(USAGE);
        return 0;
      } else throw new ConfigError('argument', arg, 'is not a doctor option');
    } catch (err) {
      io.stderr(`cphone-agent doctor: ${(err as Error).message}\n${USAGE}`);
      return 2;
    }
  }
  let fileValues: Record<string, string> = {};
  const file = envFile ?? DEFAULT_ENV_FILE;
  try {
    fileValues = parseEnvFile(readFileSync(file, 'utf8'), file);
    envFile = file;
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    if (explicitFile || !missing) {
      io.stderr(`cphone-agent doctor: --env-file ${file}: ${(err as Error).message}\n`);
      return 2;
    }
    envFile = undefined;
  }
  const env = io.env === undefined ? environmentWith(fileValues) : environmentWith(fileValues, io.env);
  const settings = readSettings(env, envFile);
  const ctx: DoctorContext = {
    settings,
    probes: io.probes ?? realProbes(),
    images: [...new Set([...images, ...(await desiredImages(settings.config.dataDir))])],
    workerPath: workerPath(),
    now: new Date(),
  };
  const results = await runChecks(ctx);
  const ok = results.every((r) => r.status !== 'fail');
  if (json) io.stdout(`${JSON.stringify({ ok, checks: results }, null, 2)}\n`);
  else io.stdout(renderText(results));
  return ok ? 0 : 1;
}
