// What a doctor check sees of the host (probes, so unit tests can describe any host) and what it says.
import type { AgentConfig, ConfigError } from '../config.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  /** Stable name, e.g. `binder` (the JSON output's key). */
  readonly id: string;
  readonly status: CheckStatus;
  /** What was found, with the figures. */
  readonly detail: string;
  /** What to do about a warn or fail: a concrete command or setting. */
  readonly fix?: string;
}

export interface FsStats {
  /** statfs f_type (e.g. 0x63677270 for cgroup2). */
  readonly type: number;
  readonly freeBytes: number;
  readonly totalBytes: number;
}

export interface CommandOutput {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface EngineVersion {
  /** `Podman Engine` or `Engine` (Docker), from the version's Components. */
  readonly name: string;
  readonly version: string;
  readonly apiVersion: string;
}

export type TlsOutcome =
  | {
      readonly ok: true;
      readonly subject: string;
      readonly validTo: Date;
      readonly alpn: string | false;
    }
  | { readonly ok: false; readonly code: string; readonly message: string };

/** Everything the checks read from the machine. */
export interface DoctorProbes {
  /** os.release(). */
  kernelRelease(): string;
  /** A file's text, undefined when it does not exist or cannot be read. */
  readFile(path: string): Promise<string | undefined>;
  pathExists(path: string): Promise<boolean>;
  /** statfs of the path, undefined when it does not exist. */
  statfs(path: string): Promise<FsStats | undefined>;
  /** Runs a program (no shell), undefined when it is not installed. */
  command(file: string, args: readonly string[]): Promise<CommandOutput | undefined>;
  /** The engine's version over the Docker Engine API socket; throws with the socket error. */
  engineVersion(socket: string): Promise<EngineVersion>;
  /** Whether the engine has this image; throws when the engine cannot be asked. */
  engineHasImage(socket: string, ref: string): Promise<boolean>;
  /** undefined when the port can be bound, else the error code (EADDRINUSE, EACCES…). */
  portFree(address: string, port: number, protocol: 'tcp' | 'udp'): Promise<string | undefined>;
  /** Whether an agent answers /healthz on 127.0.0.1:port (then the ports are its own). */
  agentAnswers(port: number): Promise<boolean>;
  tlsHandshake(options: {
    host: string;
    port: number;
    ca: string | undefined;
    servername: string | undefined;
  }): Promise<TlsOutcome>;
}

/** The settings as far as they could be read: a ConfigError per bad variable, defaults in their place. */
export interface DoctorSettings {
  readonly config: AgentConfig;
  readonly errors: readonly ConfigError[];
  /** The settings file read, if any. */
  readonly envFile: string | undefined;
  /** MEDIASOUP_WORKER_BIN, which mediasoup reads to find its worker. */
  readonly workerBin: string | undefined;
}

export interface DoctorContext {
  readonly settings: DoctorSettings;
  readonly probes: DoctorProbes;
  /** Phone images to look for in the engine (--image, and those of the agent's last desired set). */
  readonly images: readonly string[];
  /** The mediasoup worker binary's default path. */
  readonly workerPath: string;
  readonly now: Date;
}

export type Check = (ctx: DoctorContext) => Promise<CheckResult>;
