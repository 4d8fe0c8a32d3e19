// Contexts: where the CLI talks to and with which key, kept in $XDG_CONFIG_HOME/cphone/config.yaml
// (kubectl's kubeconfig, flattened: one list of contexts, each with its own server and key).
//
//   current-context: embedded
//   contexts:
//     - name: embedded
//       server: http://127.0.0.1:8080
//       key-file: /srv/cphone/.data/control-plane/bootstrap-admin-key
//     - name: prod
//       server: https://api.cphone.example
//       key: cpk_...            # written by `cphone login`; the file is 0600
//       ca-file: /etc/cphone/ca.pem
//       tenant: tnt_...
//
// CPHONE_API_URL and CPHONE_API_KEY override the context's server and key; CPHONE_CONTEXT names the
// context as --context does; CPHONE_CONFIG names another file.
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { UsageError } from './errors.js';

export interface Context {
  name: string;
  server: string;
  key?: string;
  'key-file'?: string;
  'ca-file'?: string;
  tenant?: string;
}

export interface ConfigFile {
  'current-context'?: string;
  contexts: Context[];
}

/** The fields `set-context` may set, in the file's spelling. */
export const CONTEXT_FIELDS = ['server', 'key-file', 'ca-file', 'tenant'] as const;

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CPHONE_CONFIG) return env.CPHONE_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(base, 'cphone', 'config.yaml');
}

export async function readConfig(path: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { contexts: [] };
    throw e;
  }
  let doc: unknown;
  try {
    doc = parse(text) ?? {};
  } catch (e) {
    throw new UsageError(`${path}: not valid YAML: ${(e as Error).message}`);
  }
  const file = doc as Partial<ConfigFile>;
  if (typeof file !== 'object' || (file.contexts !== undefined && !Array.isArray(file.contexts))) {
    throw new UsageError(`${path}: "contexts" must be a list`);
  }
  const contexts = (file.contexts ?? []).map((c, i) => {
    if (!c || typeof c.name !== 'string' || !c.name) {
      throw new UsageError(`${path}: contexts[${i}].name is missing`);
    }
    return c;
  });
  return { ...(file['current-context'] ? { 'current-context': file['current-context'] } : {}), contexts };
}

/** Writes the file atomically, readable by its owner only (it may hold keys). */
export async function writeConfig(path: string, config: ConfigFile): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, stringify(config), { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}

/** Adds or changes one context (fields left undefined stay as they were). */
export function upsertContext(
  config: ConfigFile,
  name: string,
  fields: Partial<Record<keyof Context, string>>,
): Context {
  let context = config.contexts.find((c) => c.name === name);
  if (!context) {
    context = { name, server: '' };
    config.contexts.push(context);
  }
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    if (v === '') delete (context as unknown as Record<string, unknown>)[k];
    else (context as unknown as Record<string, unknown>)[k] = v;
  }
  return context;
}

/** Where a command talks to, after flags, environment and the config file have had their say. */
export interface Target {
  contextName: string | undefined;
  server: string;
  key: string | undefined;
  ca: string | undefined;
  tenant: string | undefined;
}

export interface TargetFlags {
  context?: string | undefined;
  server?: string | undefined;
  tenant?: string | undefined;
}

/** The embedded platform's address when nothing else is set (`npm start` listens there). */
export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

export async function resolveTarget(
  flags: TargetFlags,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Target> {
  const path = configPath(env);
  const config = await readConfig(path);
  const wanted = flags.context || env.CPHONE_CONTEXT || config['current-context'];
  const context = wanted ? config.contexts.find((c) => c.name === wanted) : undefined;
  if (wanted && !context) {
    const names = config.contexts.map((c) => c.name).join(', ') || 'none';
    throw new UsageError(`context "${wanted}" is not in ${path} (contexts: ${names})`);
  }
  let key = env.CPHONE_API_KEY || context?.key;
  if (!key && context?.['key-file']) key = await readSecret(context['key-file'], 'key-file');
  const caFile = env.CPHONE_CA_FILE || context?.['ca-file'];
  return {
    contextName: context?.name,
    server: (flags.server || env.CPHONE_API_URL || context?.server || DEFAULT_SERVER).replace(/\/+$/, ''),
    key,
    ca: caFile ? await readSecret(caFile, 'ca-file') : undefined,
    tenant: flags.tenant || context?.tenant,
  };
}

async function readSecret(path: string, field: string): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (e) {
    throw new UsageError(`${field} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
