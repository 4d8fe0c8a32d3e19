import { create } from '@bufbuild/protobuf';
import { type Duration, DurationSchema, timestampDate } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, type ServiceImpl } from '@connectrpc/connect';
import { ArtifactKind, ArtifactSchema, agentv1, type DeviceService, toAgentInputEvents } from '@cphone/proto';
import type { Selectable } from 'kysely';
import { principalOf } from '../api/context.js';
import { compact, ts } from '../api/convert.js';
import type { Principal } from '../auth/principal.js';
import type { Deps } from '../deps.js';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, UnavailableError } from '../errors.js';
import type { CommandKind } from '../gateway/types.js';
import type { ArtifactTable } from '../store/schema.js';
import { artifactDownloadUrl, artifactUploadUrl } from './artifact-urls.js';
import type { DeviceRow } from './convert.js';
import { loadDevice } from './lifecycle.js';

type ResultCase = Exclude<agentv1.CommandResult['result']['case'], undefined>;
type ResultOf<K extends ResultCase> = Extract<agentv1.CommandResult['result'], { case: K }>['value'];
type KindOf<K extends ResultCase> = Extract<CommandKind, { case: K }>;

type ActionDeps = Pick<Deps, 'db' | 'clock' | 'config' | 'logger' | 'gateway'>;

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

/**
 * The one place an agent's CommandCode becomes an API error. Codes map one to one onto the Connect
 * code of the same name; an agent's INTERNAL message stays in the log.
 */
function commandError(
  result: agentv1.CommandResult,
  deviceId: string,
  log: ActionDeps['logger'],
): ConnectError {
  const message = result.message || agentv1.CommandCode[result.code] || 'failed';
  const codes: Partial<Record<agentv1.CommandCode, Code>> = {
    [agentv1.CommandCode.INVALID_ARGUMENT]: Code.InvalidArgument,
    [agentv1.CommandCode.NOT_FOUND]: Code.NotFound,
    [agentv1.CommandCode.FAILED_PRECONDITION]: Code.FailedPrecondition,
    [agentv1.CommandCode.DEADLINE_EXCEEDED]: Code.DeadlineExceeded,
    [agentv1.CommandCode.RESOURCE_EXHAUSTED]: Code.ResourceExhausted,
    [agentv1.CommandCode.UNIMPLEMENTED]: Code.Unimplemented,
    [agentv1.CommandCode.UNAVAILABLE]: Code.Unavailable,
    [agentv1.CommandCode.ABORTED]: Code.Aborted,
  };
  const code = codes[result.code];
  if (code === undefined) {
    log.error(
      { deviceId, agentCode: result.code, agentMessage: result.message },
      'agent command failed internally',
    );
    return new ConnectError(`device ${deviceId}: the host agent failed the command`, Code.Internal);
  }
  return new ConnectError(`device ${deviceId}: ${message}`, code);
}

/** The agent-backed DeviceService methods: each is one Command to the device's host, on a RUNNING device. */
export function deviceActions(deps: ActionDeps) {
  const { db, clock, gateway, config } = deps;
  const log = deps.logger.child({ module: 'device-actions' });

  async function run<K extends ResultCase>(
    principal: Principal,
    deviceId: string,
    timeoutS: number,
    prepare: (device: DeviceRow) => Promise<KindOf<K>> | KindOf<K>,
  ): Promise<{ result: ResultOf<K>; finishedAt: Date | undefined; tenantId: string }> {
    const device = await loadDevice(db, principal.visibleTenants, deviceId);
    if (device.state !== 'running' || !device.host_id) {
      throw new FailedPreconditionError(
        `device ${JSON.stringify(deviceId)} is ${device.state}: it must be running`,
      );
    }
    const kind = await prepare(device);
    const deadline = new Date(clock.now().getTime() + timeoutS * 1000);
    const result = await gateway.command(device.host_id, device.id, kind, deadline);
    if (result.code !== agentv1.CommandCode.OK) throw commandError(result, deviceId, log);
    if (result.result.case !== kind.case) {
      log.error(
        { deviceId, sent: kind.case, got: result.result.case },
        'agent answered another command kind',
      );
      throw new ConnectError(
        `device ${deviceId}: the host agent answered with the wrong result`,
        Code.Internal,
      );
    }
    return {
      result: result.result.value as ResultOf<K>,
      finishedAt: result.finishedAt ? timestampDate(result.finishedAt) : undefined,
      tenantId: device.tenant_id,
    };
  }

  async function artifact(
    tenantId: string,
    sha256: string,
    field: string,
  ): Promise<Selectable<ArtifactTable>> {
    if (!SHA256.test(sha256))
      throw new InvalidArgumentError(field, sha256, 'must be 64 lowercase hex characters');
    const row = await db
      .selectFrom('artifact')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('sha256', '=', sha256)
      .executeTakeFirst();
    if (!row) throw new NotFoundError('artifact', sha256);
    return row;
  }

  const handlers: Partial<ServiceImpl<typeof DeviceService>> = {
    async installApp(req, context) {
      const timeout = seconds('timeout', req.timeout, TIMEOUTS.install);
      const { result } = await run(principalOf(context), req.deviceId, timeout, async (device) => {
        const apk = await artifact(device.tenant_id, req.artifactSha256, 'artifact_sha256');
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
            downloadUrl: artifactDownloadUrl(config.publicUrl, apk.sha256),
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
    },

    async takeScreenshot(req, context) {
      const timeout = seconds('timeout', req.timeout, TIMEOUTS.screenshot);
      const { result, finishedAt } = await run(principalOf(context), req.deviceId, timeout, () => ({
        case: 'screenshot',
        value: create(agentv1.ScreenshotCommandSchema),
      }));
      return compact({
        png: result.png,
        widthPx: result.widthPx,
        heightPx: result.heightPx,
        captureTime: ts(finishedAt),
      });
    },

    async execShell(req, context) {
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
      const { result } = await run(principalOf(context), req.deviceId, timeout + SHELL_GRACE_S, () => ({
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
    },

    async pushFile(req, context) {
      absolutePath('remote_path', req.remotePath);
      if (req.mode > 0o7777)
        throw new InvalidArgumentError('mode', req.mode, 'must be permission bits (at most 0o7777)');
      const timeout = seconds('timeout', req.timeout, TIMEOUTS.file);
      const { result } = await run(principalOf(context), req.deviceId, timeout, async (device) => {
        const file = await artifact(device.tenant_id, req.artifactSha256, 'artifact_sha256');
        return {
          case: 'pushFile',
          value: create(agentv1.PushFileCommandSchema, {
            artifactSha256: file.sha256,
            sizeBytes: BigInt(file.size_bytes),
            downloadUrl: artifactDownloadUrl(config.publicUrl, file.sha256),
            remotePath: req.remotePath,
            mode: req.mode || 0o644,
          }),
        };
      });
      return { remotePath: req.remotePath, sizeBytes: result.sizeBytes };
    },

    async pullFile(req, context) {
      absolutePath('remote_path', req.remotePath);
      if (req.maxBytes < 0n)
        throw new InvalidArgumentError('max_bytes', String(req.maxBytes), 'must be >= 0');
      const timeout = seconds('timeout', req.timeout, TIMEOUTS.file);
      const filename = req.remotePath.split('/').pop() || 'file';
      const { result, tenantId } = await run(principalOf(context), req.deviceId, timeout, (device) => ({
        case: 'pullFile',
        value: create(agentv1.PullFileCommandSchema, {
          remotePath: req.remotePath,
          maxBytes: req.maxBytes || 256n * 1024n * 1024n,
          uploadUrl: artifactUploadUrl(config.publicUrl, device.tenant_id, filename),
        }),
      }));
      const row = await db
        .selectFrom('artifact')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('sha256', '=', result.sha256)
        .executeTakeFirst();
      if (!row)
        throw new UnavailableError(
          `the agent uploaded ${result.sha256} but the artifact store does not hold it`,
        );
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
    },

    async sendInput(req, context) {
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
      await run(principalOf(context), req.deviceId, TIMEOUTS.input[0], () => ({
        case: 'input',
        value: create(agentv1.InputCommandSchema, { events: toAgentInputEvents(req.events) }),
      }));
      return {};
    },

    async dumpLogcat(req, context) {
      if (req.maxLines < 0 || req.maxLines > 10_000)
        throw new InvalidArgumentError('max_lines', req.maxLines, 'must be in 0..10000');
      req.filterSpecs.forEach((spec, i) => {
        if (!/^[^\s:]+:[VDIWEFS]$/.test(spec)) {
          throw new InvalidArgumentError(
            `filter_specs[${i}]`,
            spec,
            'must look like "<tag>:<V|D|I|W|E|F|S>"',
          );
        }
      });
      const { result } = await run(principalOf(context), req.deviceId, TIMEOUTS.logcat[0], () => ({
        case: 'logcat',
        value: create(agentv1.LogcatCommandSchema, {
          maxLines: req.maxLines || 500,
          filterSpecs: req.filterSpecs,
          maxBytes: LOGCAT_MAX_BYTES,
        }),
      }));
      return { text: result.text, truncated: result.truncated };
    },
  };

  return {
    handlers,
    /** A soft reboot: Android reboots, the container stays. Resolves once the agent accepted it. */
    async reboot(principal: Principal, deviceId: string): Promise<void> {
      await run(principal, deviceId, TIMEOUTS.reboot[0], () => ({
        case: 'reboot',
        value: create(agentv1.RebootCommandSchema),
      }));
    },
  };
}
