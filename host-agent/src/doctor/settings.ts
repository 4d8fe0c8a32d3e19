// The agent's settings as the doctor reads them: every bad variable is reported, and a default (or
// a placeholder for the required ones) takes its place so the remaining checks still run.
import { type AgentConfig, ConfigError, loadConfig } from '../config.js';
import type { DoctorSettings } from './types.js';

type Env = Record<string, string | undefined>;

/** Variables to clear, with placeholders for the required ones, so loadConfig gets past `variable`. */
function setAside(env: Env, variable: string): void {
  if (variable === 'CPHONE_HOST_ID') env.CPHONE_HOST_ID = '(unset)';
  else if (variable.startsWith('CPHONE_HOST_CREDENTIAL')) {
    env.CPHONE_HOST_CREDENTIAL = '(unset)';
    delete env.CPHONE_HOST_CREDENTIAL_FILE;
  } else if (variable.startsWith('CPHONE_STREAM_TLS')) {
    delete env.CPHONE_STREAM_TLS_CERT;
    delete env.CPHONE_STREAM_TLS_KEY;
    delete env.CPHONE_STREAM_TLS;
  } else delete env[variable];
}

export function readSettings(source: Readonly<Env>, envFile: string | undefined): DoctorSettings {
  const env: Env = { ...source };
  const errors: ConfigError[] = [];
  for (;;) {
    try {
      const config: AgentConfig = loadConfig(env);
      return { config, errors, envFile, workerBin: source.MEDIASOUP_WORKER_BIN || undefined };
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      // A variable that still fails once set aside would loop: nothing more can be learned.
      if (errors.some((e) => e.variable === err.variable)) throw err;
      errors.push(err);
      setAside(env, err.variable);
    }
  }
}
