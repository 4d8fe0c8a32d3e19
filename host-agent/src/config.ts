// The only place the agent reads its environment: validated once, frozen, with documented defaults.
import { readFileSync } from 'node:fs';
import { availableParallelism, arch as osArch, hostname as osHostname } from 'node:os';
import { resolve } from 'node:path';
import { SCRCPY_SERVER_VERSION } from './screen/scrcpy-version.js';

export type RuntimeKind = 'docker' | 'sim';

/** Capacity overrides; an unset field is measured on the host (cores, MemTotal, data-dir file system). */
export interface CapacityOverrides {
  /** CPHONE_CAPACITY_VCPU_MILLICORES */
  readonly vcpuMillicores?: number;
  /** CPHONE_CAPACITY_MEMORY_MIB */
  readonly memoryMib?: number;
  /** CPHONE_CAPACITY_STORAGE_GIB */
  readonly storageGib?: number;
}

/** The phones' live streams: the sfu, its signaling endpoint and its WebRTC ports. */
export interface StreamConfig {
  /** Serve streams. CPHONE_STREAM, `on` (default) or `off` (the agent then announces no endpoint) */
  readonly enabled: boolean;
  /** Address of the public HTTPS/WSS signaling server. CPHONE_STREAM_BIND, default 0.0.0.0 */
  readonly bind: string;
  /** Its port (0 picks one). CPHONE_STREAM_PORT, default 4443 */
  readonly port: number;
  /**
   * URL browsers reach the signaling server at, told to the control plane (it goes into every stream
   * session as sfu_url; /signal is added when it has no path). CPHONE_STREAM_PUBLIC_URL, `wss://…`;
   * default wss://<bind address, or the host name when bound to all>:<port>/signal
   */
  readonly publicUrl: string | undefined;
  /**
   * TLS on the signaling endpoint. CPHONE_STREAM_TLS, `on` (default: wss) or `off` (plain ws), which
   * is allowed only when CPHONE_STREAM_BIND is a loopback address: a browser on the same machine then
   * plays without accepting a certificate (browsers refuse a WebSocket to an untrusted certificate
   * silently), and nothing off the machine can reach the endpoint.
   */
  readonly tls: boolean;
  /** PEM certificate chain and key of the signaling server. CPHONE_STREAM_TLS_CERT, CPHONE_STREAM_TLS_KEY; both or neither. Unset: a self-signed certificate made under <data dir>/stream-tls on the first start */
  readonly tlsCertFile: string | undefined;
  readonly tlsKeyFile: string | undefined;
  /** Address the WebRTC ports listen on. CPHONE_RTC_LISTEN_IP, default 0.0.0.0 */
  readonly rtcListenIp: string;
  /** Address (IP or name) browsers send media to, when it differs from the listen address (NAT, 0.0.0.0). CPHONE_RTC_ANNOUNCED_ADDRESS */
  readonly rtcAnnouncedAddress: string | undefined;
  /** First WebRTC port: worker i takes port + i, UDP and TCP (0: ephemeral ports). CPHONE_RTC_PORT, default 40000 */
  readonly rtcPort: number;
  /** mediasoup workers. CPHONE_SFU_WORKERS, default one per two cores (at least one) */
  readonly workers: number;
  /** Viewers of one phone that may drive it at once. CPHONE_STREAM_CONTROL_SEATS, default 1 */
  readonly controlSeats: number;
  /** Viewers of one phone at once. CPHONE_STREAM_MAX_VIEWERS, default 10 */
  readonly maxViewers: number;
  /** A phone's router stays this long after its last viewer leaves (ms). CPHONE_STREAM_ROOM_GRACE_MS, default 30000 */
  readonly roomGraceMs: number;
}

export interface AgentConfig {
  /** Control plane agent gateway, host:port. CPHONE_CONTROL_PLANE, default 127.0.0.1:8443 */
  readonly controlPlane: string;
  /** Host id given at enrollment. CPHONE_HOST_ID, required */
  readonly hostId: string;
  /** Host credential. CPHONE_HOST_CREDENTIAL, or read from CPHONE_HOST_CREDENTIAL_FILE; required. Never logged. */
  readonly credential: string;
  /** PEM CA the gateway's certificate chains to. CPHONE_CA_FILE; the system roots when unset */
  readonly caFile: string | undefined;
  /** TLS name to check on the gateway's certificate when it differs from the address. CPHONE_TLS_SERVER_NAME */
  readonly tlsServerName: string | undefined;
  /** Container runtime. CPHONE_RUNTIME, `docker` (default) or `sim` */
  readonly runtime: RuntimeKind;
  /** Docker Engine socket. CPHONE_DOCKER_SOCKET, default /var/run/docker.sock */
  readonly dockerSocket: string;
  /** Label scope of this agent's containers on a shared engine. CPHONE_RUNTIME_SCOPE, default `default` */
  readonly runtimeScope: string;
  /** How long a sim phone pretends to boot. CPHONE_SIM_BOOT_DELAY_MS, default 0 */
  readonly simBootDelayMs: number;
  readonly capacity: CapacityOverrides;
  /** The most devices this agent runs. CPHONE_MAX_DEVICES, default 32 */
  readonly maxDevices: number;
  /** Host labels, `k=v,k=v`. CPHONE_LABELS, default none */
  readonly labels: Readonly<Record<string, string>>;
  /** Spool, desired-state copy and sim phones. CPHONE_AGENT_DATA_DIR, default /var/lib/cphone-agent */
  readonly dataDir: string;
  /** Local health and metrics port, bound to 127.0.0.1 (0 picks one). CPHONE_AGENT_HTTP_PORT, default 9102 */
  readonly httpPort: number;
  /** CPU architecture reported to the scheduler. CPHONE_ARCH, default from os.arch() (x64 -> amd64) */
  readonly arch: string;
  /** pino level. CPHONE_LOG_LEVEL, default info */
  readonly logLevel: string;
  /** Usage sample interval (ms). CPHONE_USAGE_INTERVAL_MS, default 60000 */
  readonly usageIntervalMs: number;
  /** Devices reconciled in parallel. CPHONE_RECONCILE_CONCURRENCY, default 8 */
  readonly reconcileConcurrency: number;
  /** Android must boot within this (ms) or the start counts as failed. CPHONE_BOOT_TIMEOUT_MS, default 300000 */
  readonly bootTimeoutMs: number;
  /** Grace period of a stop (ms). CPHONE_STOP_TIMEOUT_MS, default 30000 */
  readonly stopTimeoutMs: number;
  /**
   * The scrcpy server pushed to phones to stream their screens: the release file
   * scrcpy-server-v3.3.3, checked against its published sha256 before every push (installed by
   * host-agent/scripts/install-scrcpy-server.sh). CPHONE_SCRCPY_SERVER, default
   * <data dir>/scrcpy-server-v3.3.3
   */
  readonly scrcpyServer: string;
  readonly stream: StreamConfig;
}

/** A setting with a bad value: names the variable and the value. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly variable: string,
    readonly value: string | undefined,
    reason: string,
  ) {
    super(`invalid ${variable}=${JSON.stringify(value ?? '')}: ${reason}`);
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function set(env: Env, name: string): string | undefined {
  const raw = env[name]?.trim();
  return raw === undefined || raw === '' ? undefined : raw;
}

function int(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = set(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(name, raw, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

function optionalInt(env: Env, name: string, min: number): number | undefined {
  return set(env, name) === undefined ? undefined : int(env, name, 0, min);
}

function hostPort(env: Env, name: string, fallback: string): string {
  const raw = set(env, name) ?? fallback;
  const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(raw);
  const port = Number(match?.[2]);
  if (match === null || port < 1 || port > 65535) throw new ConfigError(name, raw, 'must be host:port');
  return raw;
}

function labels(env: Env, name: string): Record<string, string> {
  const raw = set(env, name);
  const out: Record<string, string> = {};
  if (raw === undefined) return out;
  for (const pair of raw.split(',')) {
    const [key, value, ...rest] = pair.split('=').map((s) => s.trim());
    if (!key || value === undefined || rest.length > 0 || !/^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/.test(key)) {
      throw new ConfigError(name, raw, `entry ${JSON.stringify(pair)} must be key=value`);
    }
    out[key] = value;
  }
  return out;
}

function credential(env: Env): string {
  const inline = set(env, 'CPHONE_HOST_CREDENTIAL');
  if (inline !== undefined) return inline;
  const file = set(env, 'CPHONE_HOST_CREDENTIAL_FILE');
  if (file === undefined) {
    throw new ConfigError('CPHONE_HOST_CREDENTIAL', undefined, 'set it or CPHONE_HOST_CREDENTIAL_FILE');
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ConfigError('CPHONE_HOST_CREDENTIAL_FILE', file, `cannot be read: ${(err as Error).message}`);
  }
  if (text === '') throw new ConfigError('CPHONE_HOST_CREDENTIAL_FILE', file, 'is empty');
  return text;
}

function ip(env: Env, name: string, fallback: string): string {
  const raw = set(env, name) ?? fallback;
  if (
    !/^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]+)$/.test(raw) ||
    (raw.includes('.') && raw.split('.').some((o) => Number(o) > 255))
  ) {
    throw new ConfigError(name, raw, 'must be an IPv4 or IPv6 address');
  }
  return raw;
}

/** 127.0.0.0/8 or ::1 (also as an IPv4-mapped address): reachable from this machine only. */
function isLoopback(address: string): boolean {
  return /^(::ffff:)?127\./.test(address) || address === '::1';
}

function streamConfig(env: Env): StreamConfig {
  const enabled = set(env, 'CPHONE_STREAM') ?? 'on';
  if (enabled !== 'on' && enabled !== 'off')
    throw new ConfigError('CPHONE_STREAM', enabled, 'must be on or off');
  const port = int(env, 'CPHONE_STREAM_PORT', 4443, 0, 65535);
  const bind = ip(env, 'CPHONE_STREAM_BIND', '0.0.0.0');
  const tlsSetting = set(env, 'CPHONE_STREAM_TLS') ?? 'on';
  if (tlsSetting !== 'on' && tlsSetting !== 'off')
    throw new ConfigError('CPHONE_STREAM_TLS', tlsSetting, 'must be on or off');
  const tls = tlsSetting === 'on';
  if (!tls && !isLoopback(bind)) {
    throw new ConfigError(
      'CPHONE_STREAM_TLS',
      tlsSetting,
      `may be off only when CPHONE_STREAM_BIND is a loopback address (it is ${bind})`,
    );
  }
  const scheme = tls ? 'wss:' : 'ws:';
  const publicUrl = set(env, 'CPHONE_STREAM_PUBLIC_URL');
  if (publicUrl !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(publicUrl);
    } catch {}
    if (url?.protocol !== scheme || url.search !== '' || url.hash !== '') {
      throw new ConfigError(
        'CPHONE_STREAM_PUBLIC_URL',
        publicUrl,
        `must be a ${scheme}// URL without query or fragment`,
      );
    }
  }
  const cert = set(env, 'CPHONE_STREAM_TLS_CERT');
  const key = set(env, 'CPHONE_STREAM_TLS_KEY');
  if (!tls && cert !== undefined) {
    throw new ConfigError('CPHONE_STREAM_TLS_CERT', cert, 'must be unset when CPHONE_STREAM_TLS is off');
  }
  if ((cert === undefined) !== (key === undefined)) {
    const missing = cert === undefined ? 'CPHONE_STREAM_TLS_CERT' : 'CPHONE_STREAM_TLS_KEY';
    throw new ConfigError(
      missing,
      undefined,
      'set both CPHONE_STREAM_TLS_CERT and CPHONE_STREAM_TLS_KEY, or neither',
    );
  }
  for (const [name, file] of [
    ['CPHONE_STREAM_TLS_CERT', cert],
    ['CPHONE_STREAM_TLS_KEY', key],
  ] as const) {
    if (file === undefined) continue;
    try {
      readFileSync(file);
    } catch (err) {
      throw new ConfigError(name, file, `cannot be read: ${(err as Error).message}`);
    }
  }
  const announced = set(env, 'CPHONE_RTC_ANNOUNCED_ADDRESS');
  if (announced !== undefined && !/^[A-Za-z0-9.:-]{1,253}$/.test(announced)) {
    throw new ConfigError('CPHONE_RTC_ANNOUNCED_ADDRESS', announced, 'must be an IP address or a host name');
  }
  const rtcPort = int(env, 'CPHONE_RTC_PORT', 40_000, 0, 65535);
  const workers = int(env, 'CPHONE_SFU_WORKERS', Math.max(1, Math.floor(availableParallelism() / 2)), 1, 256);
  if (rtcPort !== 0 && rtcPort + workers - 1 > 65535) {
    throw new ConfigError(
      'CPHONE_RTC_PORT',
      String(rtcPort),
      `leaves no room for ${workers} workers (one port each)`,
    );
  }
  return Object.freeze({
    enabled: enabled === 'on',
    bind,
    port,
    publicUrl,
    tls,
    tlsCertFile: cert,
    tlsKeyFile: key,
    rtcListenIp: ip(env, 'CPHONE_RTC_LISTEN_IP', '0.0.0.0'),
    rtcAnnouncedAddress: announced,
    rtcPort,
    workers,
    controlSeats: int(env, 'CPHONE_STREAM_CONTROL_SEATS', 1, 1, 64),
    maxViewers: int(env, 'CPHONE_STREAM_MAX_VIEWERS', 10, 1, 1000),
    roomGraceMs: int(env, 'CPHONE_STREAM_ROOM_GRACE_MS', 30_000, 0, 3_600_000),
  });
}

/**
 * The stream endpoint told to the control plane (it becomes every session's sfu_url): the configured
 * URL, else wss://<bind address, or the host name when bound to every address>:<port> (ws:// with
 * CPHONE_STREAM_TLS off); a URL with
 * no path gets the signaling path, /signal.
 */
export function streamEndpoint(stream: StreamConfig, boundPort: number, host: string = osHostname()): string {
  if (!stream.enabled) return '';
  const wildcard = stream.bind === '0.0.0.0' || stream.bind === '::';
  const name = wildcard ? host : stream.bind.includes(':') ? `[${stream.bind}]` : stream.bind;
  const url = new URL(stream.publicUrl ?? `${stream.tls ? 'wss' : 'ws'}://${name}:${boundPort}`);
  if (url.pathname === '/') url.pathname = '/signal';
  return url.href;
}

/** Node's os.arch() in the scheduler's naming. */
export function defaultArch(nodeArch: string = osArch()): string {
  return nodeArch === 'x64' ? 'amd64' : nodeArch;
}

export function loadConfig(env: Env = process.env): AgentConfig {
  const hostId = set(env, 'CPHONE_HOST_ID');
  if (hostId === undefined) throw new ConfigError('CPHONE_HOST_ID', undefined, 'is required');
  const runtime = set(env, 'CPHONE_RUNTIME') ?? 'docker';
  if (runtime !== 'docker' && runtime !== 'sim') {
    throw new ConfigError('CPHONE_RUNTIME', runtime, 'must be docker or sim');
  }
  const arch = set(env, 'CPHONE_ARCH') ?? defaultArch();
  if (arch !== 'arm64' && arch !== 'amd64')
    throw new ConfigError('CPHONE_ARCH', arch, 'must be arm64 or amd64');
  const logLevel = set(env, 'CPHONE_LOG_LEVEL') ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new ConfigError('CPHONE_LOG_LEVEL', logLevel, 'must be a pino level');
  }
  const vcpu = optionalInt(env, 'CPHONE_CAPACITY_VCPU_MILLICORES', 1);
  const memory = optionalInt(env, 'CPHONE_CAPACITY_MEMORY_MIB', 1);
  const storage = optionalInt(env, 'CPHONE_CAPACITY_STORAGE_GIB', 1);
  const caFile = set(env, 'CPHONE_CA_FILE');
  if (caFile !== undefined) {
    try {
      readFileSync(caFile);
    } catch (err) {
      throw new ConfigError('CPHONE_CA_FILE', caFile, `cannot be read: ${(err as Error).message}`);
    }
  }
  const dataDir = resolve(set(env, 'CPHONE_AGENT_DATA_DIR') ?? '/var/lib/cphone-agent');
  return Object.freeze({
    controlPlane: hostPort(env, 'CPHONE_CONTROL_PLANE', '127.0.0.1:8443'),
    hostId,
    credential: credential(env),
    caFile,
    tlsServerName: set(env, 'CPHONE_TLS_SERVER_NAME'),
    runtime,
    dockerSocket: set(env, 'CPHONE_DOCKER_SOCKET') ?? '/var/run/docker.sock',
    runtimeScope: set(env, 'CPHONE_RUNTIME_SCOPE') ?? 'default',
    simBootDelayMs: int(env, 'CPHONE_SIM_BOOT_DELAY_MS', 0, 0),
    capacity: Object.freeze({
      ...(vcpu !== undefined ? { vcpuMillicores: vcpu } : {}),
      ...(memory !== undefined ? { memoryMib: memory } : {}),
      ...(storage !== undefined ? { storageGib: storage } : {}),
    }),
    maxDevices: int(env, 'CPHONE_MAX_DEVICES', 32, 0, 10_000),
    labels: Object.freeze(labels(env, 'CPHONE_LABELS')),
    dataDir,
    httpPort: int(env, 'CPHONE_AGENT_HTTP_PORT', 9102, 0, 65535),
    arch,
    logLevel,
    usageIntervalMs: int(env, 'CPHONE_USAGE_INTERVAL_MS', 60_000, 10),
    reconcileConcurrency: int(env, 'CPHONE_RECONCILE_CONCURRENCY', 8, 1, 256),
    bootTimeoutMs: int(env, 'CPHONE_BOOT_TIMEOUT_MS', 300_000, 100),
    stopTimeoutMs: int(env, 'CPHONE_STOP_TIMEOUT_MS', 30_000, 0),
    // Read at each push, not here: the agent runs (and manages phones) before it is installed.
    scrcpyServer: resolve(
      set(env, 'CPHONE_SCRCPY_SERVER') ?? `${dataDir}/scrcpy-server-v${SCRCPY_SERVER_VERSION}`,
    ),
    stream: streamConfig(env),
  });
}

/** The config as logged at start: the credential masked. */
export function describeConfig(config: AgentConfig): Record<string, unknown> {
  return { ...config, credential: '***' };
}

/**
 * The settings of a systemd EnvironmentFile (`/etc/cphone/agent.env`): `NAME=VALUE` lines, `#` and
 * `;` comments, blank lines, values optionally in single or double quotes. Used by commands that run
 * outside the unit (`cphone-agent doctor`) to see what the service sees.
 */
export function parseEnvFile(text: string, file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (match === null) throw new ConfigError(`${file}:${i + 1}`, line, 'must be NAME=VALUE');
    const value = match[2] ?? '';
    out[match[1] as string] = /^(["']).*\1$/.test(value) ? value.slice(1, -1) : value;
  }
  return out;
}

/** The process environment over a settings file's values (the environment wins). */
export function environmentWith(file: Readonly<Record<string, string>>, env: Env = process.env): Env {
  return { ...file, ...env };
}
