import { create } from '@bufbuild/protobuf';
import { type Duration, DurationSchema, timestampDate } from '@bufbuild/protobuf/wkt';
import type { HandlerContext } from '@connectrpc/connect';
import {
  ArtifactKind,
  ArtifactSchema,
  agentv1,
  type DumpLogcatRequest,
  type ExecShellRequest,
  type InstallAppRequest,
  type PullFileRequest,
  type PushFileRequest,
  type SendInputRequest,
  type TakeScreenshotRequest,
  toAgentInputEvents,
} from '@cphone/proto';
import type { Selectable } from 'kysely';
import { principalOf } from '../api/context.js';
import { compact, ts } from '../api/convert.js';
import type { Principal } from '../auth/principal.js';
import type { Deps } from '../deps.js';
import { commandFailure } from '../error-codes.js';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, UnavailableError } from '../errors.js';
import type { CommandKind } from '../gateway/types.js';
import type { ArtifactTable } from '../store/schema.js';
import { artifactDownloadUrl, artifactUploadUrl } from './artifact-urls.js';
import type { DeviceRow } from './convert.js';
import { loadDevice } from './lifecycle.js';

type ResultCase = Exclude<agentv1.CommandResult['result']['case'], undefined>;
type ResultOf<K extends ResultCase> = Extract<agentv1.CommandResult['result'], { case: K }>['value'];
type KindOf<K extends ResultCase> = Extract<CommandKind, { case: K }>;

// The agent-backed DeviceService methods: each is one Command to the device's host, on a RUNNING
// device, with its own timeout; the agent's answer comes back through the one error table.
export type ActionDeps = Pick<Deps, 'db' | 'clock' | 'config' | 'logger' | 'gateway'>;

/** How long a command may take, per method: [default, max] in seconds (the proto's documented values). */
const TIMEOUTS = {
  install: [300, 1800],
  screenshot: [15, 600],
  shell: [30, 600],
  file: [300, 1800],
  input: [30, 30],
  logcat: [30, 30],
  reboot: [30, 30],
} as const;
/** Extra time the agent gets past a shell command's own timeout, to kill it and report timed_out. */
const SHELL_GRACE_S = 5;
const SHA256 = /^[0-9a-f]{64}$/;
const MAX_SHELL_OUTPUT = 4 * 1024 * 1024;
const LOGCAT_MAX_BYTES = 1024 * 1024;

function seconds(
  field: string,
  value: Duration | undefined,
  [fallback, max]: readonly [number, number],
): number {
  if (!value) return fallback;
  const s = Number(value.seconds) + value.nanos / 1e9;
  if (!(s > 0) || s > max) throw new InvalidArgumentError(field, `${s}s`, `must be in (0, ${max}] seconds`);
  return s;
}

function absolutePath(field: string, path: string): void {
  if (!path.startsWith('/') || path.length > 4096 || path.includes('\0')) {
    throw new InvalidArgumentError(field, path, 'must be an absolute path in the device');
  }
}

/** An agent's failed command as a domain error; an agent's internal failure stays in the log. */
function commandError(result: agentv1.CommandResult, deviceId: string, deps: ActionDeps): Error {
  const message = result.message || agentv1.CommandCode[result.code] || 'failed';
  const failure = commandFailure(result.code, `device ${deviceId}: ${message}`);
  if (failure) return failure;
  deps.logger.error(
    { deviceId, agentCode: result.code, agentMessage: result.message },
    'agent command failed internally',
  );
  return new Error(`device ${deviceId}: the host agent failed the command`);
}

/** Sends one command to a running device's host and waits for its result, checked for its kind. */
async function run<K extends ResultCase>(
  deps: ActionDeps,
  principal: Principal,
  deviceId: string,
  timeoutS: number,
  prepare: (device: DeviceRow) => Promise<KindOf<K>> | KindOf<K>,
): Promise<{ result: ResultOf<K>; finishedAt: Date | undefined; tenantId: string }> {
  const device = await loadDevice(deps.db, principal.visibleTenants, deviceId);
  if (device.state !== 'running' || !device.host_id) {
    throw new FailedPreconditionError(
      `device ${JSON.stringify(deviceId)} is ${device.state}: it must be running`,
    );
  }
  const kind = await prepare(device);
  const deadline = new Date(deps.clock.now().getTime() + timeoutS * 1000);
  const result = await deps.gateway.command(device.host_id, device.id, kind, deadline);
  if (result.code !== agentv1.CommandCode.OK) throw commandError(result, deviceId, deps);
  if (result.result.case !== kind.case) {
    deps.logger.error(
      { deviceId, sent: kind.case, got: result.result.case },
      'agent answered another command kind',
    );
    throw new Error(`device ${deviceId}: the host agent answered with the wrong result`);
  }
  return {
    result: result.result.value as ResultOf<K>,
    finishedAt: result.finishedAt ? timestampDate(result.finishedAt) : undefined,
    tenantId: device.tenant_id,
  };
}

/** The tenant's artifact with this hash, or NOT_FOUND. */
async function artifact(
  deps: ActionDeps,
  tenantId: string,
  sha256: string,
  field: string,
): Promise<Selectable<ArtifactTable>> {
  if (!SHA256.test(sha256))
    throw new InvalidArgumentError(field, sha256, 'must be 64 lowercase hex characters');
  const row = await deps.db
    .selectFrom('artifact')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('sha256', '=', sha256)
    .executeTakeFirst();
  if (!row) throw new NotFoundError('artifact', sha256);
  return row;
}

export async function installApp(deps: ActionDeps, req: InstallAppRequest, context: HandlerContext) {
  const timeout = seconds('timeout', req.timeout, TIMEOUTS.install);
  const { result } = await run(deps, principalOf(context), req.deviceId, timeout, async (device) => {
    const apk = await artifact(deps, device.tenant_id, req.artifactSha256, 'artifact_sha256');
    if (apk.kind !== 'apk')
      throw new InvalidArgumentError(
        'artifact_sha256',
        req.artifactSha256,
        `is a ${apk.kind} artifact, not an APK`,
      );
    return {
      case: 'installApp',
      value: create(agentv1.InstallAppCommandSchema, {
        artifactSha256: apk.sha256,
        sizeBytes: BigInt(apk.size_bytes),
        downloadUrl: artifactDownloadUrl(deps.config.publicUrl, apk.sha256),
        grantRuntimePermissions: req.grantRuntimePermissions,
        allowDowngrade: req.allowDowngrade,
      }),
    };
  });
  return {
    packageName: result.packageName,
    versionCode: result.versionCode,
    versionName: result.versionName,
  };
}

export async function takeScreenshot(deps: ActionDeps, req: TakeScreenshotRequest, context: HandlerContext) {
  const timeout = seconds('timeout', req.timeout, TIMEOUTS.screenshot);
  const { result, finishedAt } = await run(deps, principalOf(context), req.deviceId, timeout, () => ({
    case: 'screenshot',
    value: create(agentv1.ScreenshotCommandSchema),
  }));
  return compact({
    png: result.png,
    widthPx: result.widthPx,
    heightPx: result.heightPx,
    captureTime: ts(finishedAt),
  });
}

export async function execShell(deps: ActionDeps, req: ExecShellRequest, context: HandlerContext) {
  if (!req.command || req.command.length > 64 * 1024) {
    throw new InvalidArgumentError('command', req.command.slice(0, 64), 'must be 1..65536 characters');
  }
  const timeout = seconds('timeout', req.timeout, TIMEOUTS.shell);
  if (req.maxOutputBytes > MAX_SHELL_OUTPUT) {
    throw new InvalidArgumentError(
      'max_output_bytes',
      req.maxOutputBytes,
      `must be at most ${MAX_SHELL_OUTPUT}`,
    );
  }
  const { result } = await run(deps, principalOf(context), req.deviceId, timeout + SHELL_GRACE_S, () => ({
    case: 'shell',
    value: create(agentv1.ShellCommandSchema, {
      command: req.command,
      timeout: create(DurationSchema, {
        seconds: BigInt(Math.floor(timeout)),
        nanos: Math.round((timeout % 1) * 1e9),
      }),
      maxOutputBytes: req.maxOutputBytes || 1024 * 1024,
    }),
  }));
  return {
    exitCode: result.exitCode,
    stdout: result.stdout,
    stderr: result.stderr,
    truncated: result.truncated,
    timedOut: result.timedOut,
  };
}

export async function pushFile(deps: ActionDeps, req: PushFileRequest, context: HandlerContext) {
  absolutePath('remote_path', req.remotePath);
  if (req.mode > 0o7777)
    throw new InvalidArgumentError('mode', req.mode, 'must be permission bits (at most 0o7777)');
  const timeout = seconds('timeout', req.timeout, TIMEOUTS.file);
  const { result } = await run(deps, principalOf(context), req.deviceId, timeout, async (device) => {
    const file = await artifact(deps, device.tenant_id, req.artifactSha256, 'artifact_sha256');
    return {
      case: 'pushFile',
      value: create(agentv1.PushFileCommandSchema, {
        artifactSha256: file.sha256,
        sizeBytes: BigInt(file.size_bytes),
        downloadUrl: artifactDownloadUrl(deps.config.publicUrl, file.sha256),
        remotePath: req.remotePath,
        mode: req.mode || 0o644,
      }),
    };
  });
  return { remotePath: req.remotePath, sizeBytes: result.sizeBytes };
}

export async function pullFile(deps: ActionDeps, req: PullFileRequest, context: HandlerContext) {
  absolutePath('remote_path', req.remotePath);
  if (req.maxBytes < 0n) throw new InvalidArgumentError('max_bytes', String(req.maxBytes), 'must be >= 0');
  const timeout = seconds('timeout', req.timeout, TIMEOUTS.file);
  const filename = req.remotePath.split('/').pop() || 'file';
  const { result, tenantId } = await run(deps, principalOf(context), req.deviceId, timeout, (device) => ({
    case: 'pullFile',
    value: create(agentv1.PullFileCommandSchema, {
      remotePath: req.remotePath,
      maxBytes: req.maxBytes || 256n * 1024n * 1024n,
      uploadUrl: artifactUploadUrl(deps.config.publicUrl, device.tenant_id, filename),
    }),
  }));
  const row = await deps.db
    .selectFrom('artifact')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('sha256', '=', result.sha256)
    .executeTakeFirst();
  if (!row)
    throw new UnavailableError(`the agent uploaded ${result.sha256} but the artifact store does not hold it`);
  return {
    artifact: create(
      ArtifactSchema,
      compact({
        sha256: row.sha256,
        tenantId: row.tenant_id,
        kind: row.kind === 'apk' ? ArtifactKind.APK : ArtifactKind.FILE,
        sizeBytes: BigInt(row.size_bytes),
        filename: row.filename,
        createTime: ts(row.create_time),
      }),
    ),
  };
}

export async function sendInput(deps: ActionDeps, req: SendInputRequest, context: HandlerContext) {
  if (req.events.length < 1 || req.events.length > 100) {
    throw new InvalidArgumentError('events', `${req.events.length} events`, 'must hold 1..100 events');
  }
  req.events.forEach((e, i) => {
    if (e.kind.case === undefined)
      throw new InvalidArgumentError(`events[${i}]`, {}, 'must set tap, swipe, key or text');
    if (e.kind.case === 'text' && Buffer.byteLength(e.kind.value.text) > 4096) {
      throw new InvalidArgumentError(
        `events[${i}].text.text`,
        e.kind.value.text.slice(0, 32),
        'must be at most 4096 bytes',
      );
    }
  });
  await run(deps, principalOf(context), req.deviceId, TIMEOUTS.input[0], () => ({
    case: 'input',
    value: create(agentv1.InputCommandSchema, { events: toAgentInputEvents(req.events) }),
  }));
  return {};
}

export async function dumpLogcat(deps: ActionDeps, req: DumpLogcatRequest, context: HandlerContext) {
  if (req.maxLines < 0 || req.maxLines > 10_000)
    throw new InvalidArgumentError('max_lines', req.maxLines, 'must be in 0..10000');
  req.filterSpecs.forEach((spec, i) => {
    if (!/^[^\s:]+:[VDIWEFS]$/.test(spec)) {
      throw new InvalidArgumentError(`filter_specs[${i}]`, spec, 'must look like "<tag>:<V|D|I|W|E|F|S>"');
    }
  });
  const { result } = await run(deps, principalOf(context), req.deviceId, TIMEOUTS.logcat[0], () => ({
    case: 'logcat',
    value: create(agentv1.LogcatCommandSchema, {
      maxLines: req.maxLines || 500,
      filterSpecs: req.filterSpecs,
      maxBytes: LOGCAT_MAX_BYTES,
    }),
  }));
  return { text: result.text, truncated: result.truncated };
}

/** A soft reboot: Android reboots, the container stays. Resolves once the agent accepted it. */
export async function rebootCommand(deps: ActionDeps, principal: Principal, deviceId: string): Promise<void> {
  await run(deps, principal, deviceId, TIMEOUTS.reboot[0], () => ({
    case: 'reboot',
    value: create(agentv1.RebootCommandSchema),
  }));
}
