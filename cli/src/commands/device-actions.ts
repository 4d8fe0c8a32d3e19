// What is done inside one running phone: shell, logs, screenshot, install, push, pull, stream. Each
// is one DeviceService call (files travel as artifacts: lib/transfer.ts).
import { stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { type Artifact, ArtifactKind, type Device, StreamRights } from '@cphone/proto/api';
import type { Command } from 'commander';
import {
  action,
  type Ctx,
  collect,
  durationMs,
  examples,
  interrupted,
  intOption,
  protoDuration,
  sleep,
} from '../lib/command.js';
import { CliError, EXIT, UsageError } from '../lib/errors.js';
import { printDoc } from '../lib/output.js';
import { bytesText } from '../lib/progress.js';
import { resolveDevice } from '../lib/resolve.js';
import { readStdin } from '../lib/spec.js';
import {
  byteSize,
  downloadArtifact,
  UPLOAD_OPTIONS,
  type UploadFlags,
  uploadFile,
  uploadOptions,
} from '../lib/transfer.js';
import { interactiveAdbShell } from './adb.js';

const structured = (ctx: Ctx) => ctx.out.format === 'json' || ctx.out.format === 'yaml';

async function device(ctx: Ctx, nameOrId: string): Promise<Device> {
  return resolveDevice(await ctx.api(), nameOrId, await ctx.tenant());
}

const nameOf = (d: Device) => d.displayName || d.deviceId;

/**
 * argv as one `sh -c` line: a single argument is taken as a command line as written (pipes,
 * redirections); several are quoted one by one, as `adb shell` and `kubectl exec` pass argv.
 */
export function commandLine(argv: readonly string[]): string {
  if (argv.length === 1) return argv[0] as string;
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(' ');
}

/** The shell's exit status as the CLI's: -1 (killed on timeout) becomes 124, as timeout(1) has it. */
function exitStatus(code: number, timedOut: boolean): number {
  if (timedOut || code < 0) return 124;
  return code % 256 || (code ? 1 : 0);
}

async function runShell(ctx: Ctx, d: Device, command: string, opts: ShellFlags): Promise<void> {
  const api = await ctx.api();
  const res = await api.devices.execShell({
    deviceId: d.deviceId,
    command,
    ...(opts.timeout ? { timeout: protoDuration(opts.timeout, '--timeout') } : {}),
  });
  if (structured(ctx)) {
    printDoc(ctx.out, {
      exitCode: res.exitCode,
      stdout: Buffer.from(res.stdout).toString('utf8'),
      stderr: Buffer.from(res.stderr).toString('utf8'),
      truncated: res.truncated,
      timedOut: res.timedOut,
    });
  } else {
    process.stdout.write(res.stdout);
    process.stderr.write(res.stderr);
  }
  if (res.truncated) ctx.out.note('(output cut at the size limit)');
  const code = exitStatus(res.exitCode, res.timedOut);
  if (code) {
    throw new CliError(
      res.timedOut
        ? 'command killed: it ran past --timeout'
        : `command terminated with exit code ${res.exitCode}`,
      code,
    );
  }
}

interface ShellFlags {
  timeout?: string;
}

/** Lines of `next` after the last lines of `prev`: what a follow prints of a fresh dump. */
export function newLines(prev: readonly string[], next: readonly string[]): string[] {
  const k = Math.min(5, prev.length);
  if (k === 0) return [...next];
  const anchor = prev.slice(-k);
  for (let end = next.length; end >= k; end--) {
    if (anchor.every((line, i) => next[end - k + i] === line)) return next.slice(end);
  }
  return [...next];
}

interface LogFlags {
  follow?: boolean;
  lines: number;
  filter?: string[];
  interval: string;
}

async function logs(ctx: Ctx, d: Device, opts: LogFlags): Promise<void> {
  const api = await ctx.api();
  const filterSpecs = (opts.filter ?? []).flatMap((f) => f.split(/[\s,]+/)).filter(Boolean);
  const dump = async (maxLines: number) => {
    const res = await api.devices.dumpLogcat({ deviceId: d.deviceId, maxLines, filterSpecs });
    const text = Buffer.from(res.text).toString('utf8');
    return text.split('\n').filter((l, i, all) => l !== '' || i < all.length - 1);
  };
  let seen = await dump(opts.lines);
  if (seen.length) ctx.out.write(`${seen.join('\n')}\n`);
  if (!opts.follow) return;
  const interval = durationMs(opts.interval, '--interval');
  const stop = interrupted();
  try {
    // logcat has no stream through the API: poll the tail and print what came after the last lines
    // already printed.
    while (!(await Promise.race([sleep(interval).then(() => false), stop.promise.then(() => true)]))) {
      const now = await dump(Math.max(opts.lines, 1000));
      const fresh = newLines(seen, now);
      if (fresh.length) ctx.out.write(`${fresh.join('\n')}\n`);
      seen = now;
    }
  } finally {
    stop.dispose();
  }
}

function defaultShotName(d: Device): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${nameOf(d).replace(/[^\w.-]+/g, '_')}-${stamp}.png`;
}

async function screenshot(ctx: Ctx, d: Device, file: string | undefined): Promise<void> {
  const api = await ctx.api();
  const res = await api.devices.takeScreenshot({ deviceId: d.deviceId });
  const path = file ?? defaultShotName(d);
  if (path === '-') process.stdout.write(res.png);
  else await writeFile(path, res.png);
  const facts = {
    file: path,
    widthPx: res.widthPx,
    heightPx: res.heightPx,
    bytes: res.png.length,
    captureTime: res.captureTime ? timestampDate(res.captureTime).toISOString() : null,
  };
  if (structured(ctx) && path !== '-') printDoc(ctx.out, facts);
  else if (path !== '-')
    ctx.out.write(
      `saved ${res.widthPx}x${res.heightPx} screenshot of ${nameOf(d)} to ${path} (${bytesText(res.png.length)})\n`,
    );
}

/** A local file, uploaded; or, for 64 hex characters naming no local file, that artifact. */
async function artifactOf(ctx: Ctx, arg: string, kind: ArtifactKind, flags: UploadFlags): Promise<Artifact> {
  if (/^[0-9a-f]{64}$/.test(arg) && !(await stat(arg).catch(() => undefined))) {
    const { artifact } = await (await ctx.api()).artifacts.getArtifact({
      tenantId: await ctx.tenant(),
      sha256: arg,
    });
    if (!artifact) throw new CliError(`NOT_FOUND: artifact ${arg}`, EXIT.notFound);
    return artifact;
  }
  return uploadFile(ctx, arg, uploadOptions(kind, flags));
}

interface InstallFlags extends UploadFlags {
  grant?: boolean;
  downgrade?: boolean;
  timeout?: string;
}

async function install(ctx: Ctx, d: Device, apk: string, opts: InstallFlags): Promise<void> {
  const artifact = await artifactOf(ctx, apk, ArtifactKind.APK, opts);
  const api = await ctx.api();
  ctx.out.note(`installing ${artifact.apk?.packageName || artifact.filename} on ${nameOf(d)}`);
  const res = await api.devices.installApp({
    deviceId: d.deviceId,
    artifactSha256: artifact.sha256,
    grantRuntimePermissions: Boolean(opts.grant),
    allowDowngrade: Boolean(opts.downgrade),
    ...(opts.timeout ? { timeout: protoDuration(opts.timeout, '--timeout') } : {}),
  });
  if (structured(ctx)) {
    printDoc(ctx.out, {
      deviceId: d.deviceId,
      artifactSha256: artifact.sha256,
      packageName: res.packageName,
      versionCode: String(res.versionCode),
      versionName: res.versionName,
    });
    return;
  }
  const version = res.versionName ? ` ${res.versionName}` : '';
  ctx.out.write(`installed ${res.packageName}${version} (version code ${res.versionCode}) on ${nameOf(d)}\n`);
}

interface PushFlags extends UploadFlags {
  mode?: string;
  timeout?: string;
}

async function push(ctx: Ctx, d: Device, local: string, remote: string, opts: PushFlags): Promise<void> {
  if (!remote.startsWith('/'))
    throw new UsageError(`remote path "${remote}" must be absolute, e.g. /sdcard/Download/`);
  const mode = opts.mode === undefined ? 0 : Number.parseInt(opts.mode, 8);
  if (Number.isNaN(mode) || mode < 0 || mode > 0o7777)
    throw new UsageError(`--mode "${opts.mode}" is not octal bits such as 644`);
  const target = remote.endsWith('/') ? `${remote}${basename(local)}` : remote;
  const artifact = await artifactOf(ctx, local, ArtifactKind.FILE, opts);
  const res = await (await ctx.api()).devices.pushFile({
    deviceId: d.deviceId,
    artifactSha256: artifact.sha256,
    remotePath: target,
    mode,
    ...(opts.timeout ? { timeout: protoDuration(opts.timeout, '--timeout') } : {}),
  });
  if (structured(ctx)) {
    printDoc(ctx.out, {
      deviceId: d.deviceId,
      remotePath: res.remotePath,
      sizeBytes: String(res.sizeBytes),
      sha256: artifact.sha256,
    });
    return;
  }
  ctx.out.write(`pushed ${local} -> ${nameOf(d)}:${res.remotePath} (${bytesText(Number(res.sizeBytes))})\n`);
}

interface PullFlags {
  maxSize?: number;
  timeout?: string;
}

async function pull(
  ctx: Ctx,
  d: Device,
  remote: string,
  local: string | undefined,
  opts: PullFlags,
): Promise<void> {
  const api = await ctx.api();
  const res = await api.devices.pullFile({
    deviceId: d.deviceId,
    remotePath: remote,
    ...(opts.maxSize ? { maxBytes: BigInt(opts.maxSize) } : {}),
    ...(opts.timeout ? { timeout: protoDuration(opts.timeout, '--timeout') } : {}),
  });
  if (!res.artifact) throw new CliError('PullFile answered without an artifact');
  let path = local ?? basename(remote);
  if (path !== '-' && (await stat(path).catch(() => undefined))?.isDirectory())
    path = join(path, basename(remote));
  const saved = await downloadArtifact(ctx, res.artifact, path, { resume: false });
  if (structured(ctx)) {
    printDoc(ctx.out, {
      deviceId: d.deviceId,
      remotePath: remote,
      file: saved.path,
      sizeBytes: saved.bytes,
      sha256: res.artifact.sha256,
    });
  } else if (path !== '-') {
    ctx.out.write(`pulled ${nameOf(d)}:${remote} -> ${saved.path} (${bytesText(saved.bytes)})\n`);
  }
}

async function stream(ctx: Ctx, d: Device, opts: { control?: boolean; ttl: string }): Promise<void> {
  const api = await ctx.api();
  const ttlSeconds = Math.round(durationMs(opts.ttl, '--ttl') / 1000);
  const { streamSession: s } = await api.devices.createStreamSession({
    deviceId: d.deviceId,
    rights: opts.control ? StreamRights.CONTROL : StreamRights.VIEW,
    ttlSeconds,
  });
  if (!s) throw new CliError('CreateStreamSession answered without a session');
  // The console (served by the API server) has a page per phone with the web player on it.
  const url = new URL(`/#/phones/${encodeURIComponent(d.deviceId)}`, api.target.server).toString();
  const expires = s.expireTime ? timestampDate(s.expireTime).toISOString() : '';
  if (structured(ctx)) {
    printDoc(ctx.out, {
      url,
      deviceId: s.deviceId,
      hostId: s.hostId,
      sessionId: s.sessionId,
      rights: StreamRights[s.rights],
      sfuUrl: s.sfuUrl,
      token: s.token,
      expireTime: expires,
      iceServers: s.iceServers.map((i) => ({ urls: i.urls, username: i.username, credential: i.credential })),
    });
    return;
  }
  ctx.out.write(`${url}\n`);
  ctx.out.note(
    `the web player for ${nameOf(d)} (sign in to the console); session ${s.sessionId} (${opts.control ? 'control' : 'view'}) on ${s.sfuUrl}, token valid until ${expires}; -o json prints the token for an embedded player`,
  );
}

export function registerDeviceActions(devices: Command): void {
  examples(
    devices
      .command('shell')
      .description(
        'run a command in a phone; its output is written as is and its exit code becomes the exit code (a command with options goes after --)',
      )
      .argument('<device>', 'phone name or id')
      .argument(
        '[command...]',
        'the command; one argument is a whole shell line, several are quoted one by one',
      )
      .option('--timeout <duration>', 'kill the command after this (default 30s, at most 10m); exits 124')
      .action(
        action<ShellFlags>(async (ctx, [name, argv], opts) => {
          const d = await device(ctx, name as string);
          const words = (argv as string[] | undefined) ?? [];
          if (words.length) return runShell(ctx, d, commandLine(words), opts);
          if (process.stdin.isTTY) {
            // On a terminal: an interactive shell through the ADB tunnel, by the user's adb.
            const code = await interactiveAdbShell(ctx, d);
            if (code !== 0) throw new CliError(`command terminated with exit code ${code}`, code);
            return;
          }
          const script = await readStdin();
          if (!script.trim()) throw new UsageError('give a command after --, or a script on stdin');
          return runShell(ctx, d, script, opts);
        }),
      ),
    [
      'cphone devices shell "phone 1" -- getprop ro.build.version.release',
      'cphone devices shell "phone 1" \'pm list packages | grep example\'',
      'echo "ls /sdcard" | cphone devices shell "phone 1"',
    ],
  );

  examples(
    devices
      .command('logs')
      .description("print a phone's logcat; -f keeps printing new lines until Ctrl-C")
      .argument('<device>', 'phone name or id')
      .option('-f, --follow', 'keep printing new lines (polls)')
      .option('--lines <n>', 'how many recent lines', intOption('--lines', 1, 10_000), 200)
      .option('--filter <spec>', 'logcat filter specs, e.g. "ActivityManager:I *:S" (repeatable)', collect)
      .option('--interval <duration>', 'with -f, how often to poll', '1s')
      .action(
        action<LogFlags>(async (ctx, [name], opts) => logs(ctx, await device(ctx, name as string), opts)),
      ),
    [
      'cphone devices logs "phone 1" --lines 50',
      'cphone devices logs "phone 1" -f --filter "ActivityManager:I *:S"',
    ],
  );

  examples(
    devices
      .command('screenshot')
      .description('save the screen of a phone as PNG (to FILE or --out-file; "-" for stdout)')
      .argument('<device>', 'phone name or id')
      .argument('[file]', 'where to save it (default NAME-YYYYMMDD-HHMMSS.png)')
      .option(
        '--out-file <file>',
        'where to save it (the same as the FILE argument; -o is the output format)',
      )
      .action(
        action<{ outFile?: string }>(async (ctx, [name, file], opts) =>
          screenshot(ctx, await device(ctx, name as string), opts.outFile ?? (file as string | undefined)),
        ),
      ),
    [
      'cphone devices screenshot "phone 1" shot.png',
      'cphone devices screenshot "phone 1" --out-file - > shot.png',
    ],
  );

  const installCmd = devices
    .command('install')
    .description('upload an APK (resumable: a rerun continues where the last stopped) and install it')
    .argument('<device>', 'phone name or id')
    .argument('<apk>', 'the .apk file, or the sha256 of an APK already uploaded')
    .option('-g, --grant', 'grant every runtime permission the app declares')
    .option('--downgrade', 'allow a lower version code than the installed one')
    .option('--timeout <duration>', 'how long the install may take (default 5m)');
  for (const [flags, help, parse] of UPLOAD_OPTIONS) installCmd.option(flags, help, parse);
  examples(
    installCmd.action(
      action<InstallFlags>(async (ctx, [name, apk], opts) =>
        install(ctx, await device(ctx, name as string), apk as string, opts),
      ),
    ),
    [
      'cphone devices install "phone 1" app-release.apk -g',
      'cphone devices install "phone 1" app.apk --limit-rate 1Mi',
    ],
  );

  const pushCmd = devices
    .command('push')
    .description('copy a local file into a phone (uploaded as a FILE artifact, resumable)')
    .argument('<device>', 'phone name or id')
    .argument('<local>', 'the local file (or the sha256 of an artifact)')
    .argument('<remote>', 'absolute path in the phone; ending in / keeps the file name')
    .option('--mode <octal>', 'permission bits of the written file (default 644)')
    .option('--timeout <duration>', 'how long the copy may take (default 5m)');
  for (const [flags, help, parse] of UPLOAD_OPTIONS) pushCmd.option(flags, help, parse);
  examples(
    pushCmd.action(
      action<PushFlags>(async (ctx, [name, local, remote], opts) =>
        push(ctx, await device(ctx, name as string), local as string, remote as string, opts),
      ),
    ),
    ['cphone devices push "phone 1" data.bin /sdcard/Download/'],
  );

  examples(
    devices
      .command('pull')
      .description('copy a file out of a phone (default: its name, in this folder; "-" for stdout)')
      .argument('<device>', 'phone name or id')
      .argument('<remote>', 'absolute path in the phone')
      .argument('[local]', 'local file or folder')
      .option('--max-size <size>', 'refuse files larger than this (default 256Mi)', byteSize)
      .option('--timeout <duration>', 'how long the copy may take (default 5m)')
      .action(
        action<PullFlags>(async (ctx, [name, remote, local], opts) =>
          pull(ctx, await device(ctx, name as string), remote as string, local as string | undefined, opts),
        ),
      ),
    [
      'cphone devices pull "phone 1" /sdcard/DCIM/shot.png',
      'cphone devices pull "phone 1" /sdcard/data.bin ./out/',
    ],
  );

  examples(
    devices
      .command('stream')
      .description("print the web player's URL for a phone (-o json: the session's sfu URL and token too)")
      .argument('<device>', 'phone name or id')
      .option('--control', 'a token that may also send input (default: view only)')
      .option('--ttl <duration>', 'how long the token admits a viewer, 30s to 24h', '10m')
      .action(
        action<{ control?: boolean; ttl: string }>(async (ctx, [name], opts) =>
          stream(ctx, await device(ctx, name as string), opts),
        ),
      ),
    ['cphone devices stream "phone 1"', 'cphone devices stream "phone 1" --control --ttl 1h -o json'],
  );
}
