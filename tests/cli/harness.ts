// The built CLI (cli/dist/cphone.mjs, rebuilt here when a source is newer) run as a process against
// the end-to-end harness: the real control plane (PostgreSQL with DATABASE_URL, else PGlite), a real
// agent with virtual phones, the public API with the bootstrap admin's key. Each run gets its own
// config home, so no test reads or writes the user's contexts.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Agent } from '@cphone/host-agent';
import { HostState } from '@cphone/proto';
// @ts-expect-error plain JavaScript build script, no types
import { BUNDLE, build, isStale } from '../../cli/build.mjs';
import { type Harness, startHarness } from '../e2e/harness.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliRunOptions {
  env?: Record<string, string>;
  input?: string | Buffer;
  cwd?: string;
}

export interface CliPlatform {
  h: Harness;
  /** The agent started with the platform (a test may close it and start another). */
  agent: Agent | undefined;
  /** A config home of its own (XDG_CONFIG_HOME). */
  configHome: string;
  /** The environment every run gets: the API URL and the admin key, no colour, the config home. */
  env: Record<string, string>;
  cli(args: readonly string[], options?: CliRunOptions): Promise<CliResult>;
  close(): Promise<void>;
}

let built: Promise<void> | undefined;
export function ensureBundle(): Promise<void> {
  built ??= (isStale() as boolean) ? (build() as Promise<void>) : Promise.resolve();
  return built;
}

export function runCli(
  args: readonly string[],
  env: Record<string, string>,
  options: CliRunOptions = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BUNDLE as string, ...args], {
      cwd: options.cwd ?? process.cwd(),
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({
        code: code ?? -1,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      }),
    );
    child.stdin.end(options.input ?? '');
  });
}

/** The platform with an agent running (phones can be created and reach RUNNING). */
export async function startCliPlatform(options: { agent?: boolean } = {}): Promise<CliPlatform> {
  await ensureBundle();
  const h = await startHarness();
  const agent = options.agent === false ? undefined : await h.startAgent();
  // Phones can be placed once the agent has said Hello.
  if (agent) await h.waitForHost(HostState.READY, true);
  const configHome = await mkdtemp(join(tmpdir(), 'cphone-cli-config-'));
  const env = {
    CPHONE_API_URL: h.plane.httpUrl,
    CPHONE_API_KEY: h.token,
    XDG_CONFIG_HOME: configHome,
    NO_COLOR: '1',
  };
  return {
    h,
    agent,
    configHome,
    env,
    cli: (args, runOptions) => runCli(args, env, runOptions),
    async close() {
      await h.close();
      await rm(configHome, { recursive: true, force: true });
    },
  };
}

/** Replaces what changes from run to run (ids, times, ports, keys) so JSON can be compared with a golden file. */
export function normalize(text: string): string {
  return text
    .replace(/\b(dev|host|tnt|key|art|upl|img|evt|ses|strm|adbt|usr|inv|cmd)_[0-9a-z]{20,}\b/g, '$1_<id>')
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<time>')
    .replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:<port>')
    .replace(/cpk_[0-9a-z]+/g, 'cpk_<secret>');
}
