import { InstallError } from '../package-manager.js';
import { type Command, type CommandContext, resolvePath } from './command.js';
import { clipboardService } from './ui-commands.js';

/** `pm install` / `cmd package install`: from a file on the phone, or `-S size` streamed on stdin. */
async function install(ctx: CommandContext, args: string[]): Promise<number> {
  let replace = false;
  let streamSize: number | undefined;
  let path: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '-r') replace = true;
    else if (arg === '-S') streamSize = Number.parseInt(args[++i] ?? '', 10);
    else if (arg === '-i' || arg === '--user' || arg === '--install-reason' || arg === '-p') i++;
    else if (!arg.startsWith('-')) path = arg;
  }
  let apk: Uint8Array;
  if (streamSize !== undefined) {
    if (!Number.isSafeInteger(streamSize) || streamSize < 0) {
      await ctx.stderr('Error: APK content must be streamed\n');
      return 1;
    }
    apk = await ctx.stdin.readExactly(streamSize);
  } else if (path !== undefined) {
    const entry = ctx.device.fs.stat(path);
    if (entry?.type !== 'file') {
      await ctx.stdout(`Failure [INSTALL_FAILED_INVALID_URI: Path does not exist: ${path}]\n`);
      return 1;
    }
    apk = entry.data;
  } else {
    await ctx.stderr('Error: must either specify a package size or an APK file\n');
    return 1;
  }
  // pm replaces by default since Android 10; -r is accepted for older clients.
  return reportInstall(ctx, ctx.device.packages.install(apk, { replace: replace || true }));
}

/** pm's answer to an install: `Success`, or `Failure [CODE: message]` with status 1. */
async function reportInstall(ctx: CommandContext, installing: Promise<unknown>): Promise<number> {
  try {
    await installing;
    await ctx.stdout('Success\n');
    return 0;
  } catch (error) {
    if (!(error instanceof InstallError)) throw error;
    await ctx.stdout(`Failure [${error.code}: ${error.message}]\n`);
    return 1;
  }
}

/** The APK bytes of `install-write -S SIZE SESSION NAME [PATH|-]`: streamed on stdin or a file. */
async function installWrite(ctx: CommandContext, args: string[]): Promise<number> {
  let size: number | undefined;
  const operands: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '-S') size = Number.parseInt(args[++i] ?? '', 10);
    else operands.push(args[i]!);
  }
  const [session, name, path = '-'] = operands;
  const id = Number.parseInt(session ?? '', 10);
  if (name === undefined || Number.isNaN(id)) {
    await ctx.stderr('Error: usage: install-write [-S SIZE] SESSION_ID SPLIT_NAME [PATH|-]\n');
    return 1;
  }
  let apk: Uint8Array;
  if (path !== '-') {
    const entry = ctx.device.fs.stat(resolvePath(ctx, path));
    if (entry?.type !== 'file') {
      await ctx.stderr(`Error: Unable to open file: ${path}\n`);
      return 1;
    }
    apk = entry.data;
  } else if (size !== undefined && Number.isSafeInteger(size) && size >= 0) {
    apk = await ctx.stdin.readExactly(size);
  } else {
    apk = await ctx.stdin.readAll();
  }
  if (!ctx.device.packages.writeSession(id, name, apk)) {
    await ctx.stderr(`Error: Session ${id} does not exist\n`);
    return 1;
  }
  await ctx.stdout(`Success: streamed ${apk.byteLength} bytes\n`);
  return 0;
}

async function packageService(ctx: CommandContext, args: string[]): Promise<number> {
  const [verb, ...rest] = args;
  const { packages } = ctx.device;
  switch (verb) {
    case 'install':
      return install(ctx, rest);
    case 'install-create':
      await ctx.stdout(`Success: created install session [${packages.createSession()}]\n`);
      return 0;
    case 'install-write':
      return installWrite(ctx, rest);
    case 'install-commit':
      return reportInstall(ctx, packages.commitSession(Number.parseInt(rest[0] ?? '', 10)));
    case 'install-abandon':
      if (!packages.abandonSession(Number.parseInt(rest[0] ?? '', 10))) break;
      await ctx.stdout('Success\n');
      return 0;
    case 'list': {
      if (rest[0] !== 'packages') break;
      const flags = rest.slice(1).filter((a) => a.startsWith('-'));
      const filter = rest.slice(1).find((a) => !a.startsWith('-'));
      const thirdParty = flags.includes('-3');
      const lines = packages
        .list()
        .filter(
          (p) => (!thirdParty || p.installedAt.getTime() > 0) && (!filter || p.packageName.includes(filter)),
        )
        .map((p) =>
          flags.includes('-f') ? `package:${p.path}=${p.packageName}\n` : `package:${p.packageName}\n`,
        );
      await ctx.stdout(lines.join(''));
      return 0;
    }
    case 'uninstall': {
      const name = rest.find((a) => !a.startsWith('-'));
      if (name !== undefined && packages.uninstall(name)) {
        await ctx.stdout('Success\n');
        return 0;
      }
      await ctx.stdout('Failure [DELETE_FAILED_INTERNAL_ERROR]\n');
      return 1;
    }
    case 'path': {
      const name = rest[0];
      const pkg = name === undefined ? undefined : packages.get(name);
      if (pkg === undefined) return 1;
      await ctx.stdout(`package:${pkg.path}\n`);
      return 0;
    }
    case 'dump': {
      const pkg = rest[0] === undefined ? undefined : packages.get(rest[0]);
      if (pkg) {
        await ctx.stdout(
          `Packages:\n  Package [${pkg.packageName}]:\n    versionCode=${pkg.versionCode}\n    versionName=${pkg.versionName}\n`,
        );
      }
      return 0;
    }
  }
  await ctx.stderr(`Unknown command: ${verb ?? ''}\n`);
  return 1;
}

const pm: Command = (ctx) => packageService(ctx, ctx.argv.slice(1));

const cmd: Command = async (ctx) => {
  const [service, ...args] = ctx.argv.slice(1);
  if (service === 'package') return packageService(ctx, args);
  if (service === 'clipboard') return clipboardService(ctx, args);
  if (service === '-l') {
    await ctx.stdout('Currently running services:\n  activity\n  clipboard\n  package\n  window\n');
    return 0;
  }
  await ctx.stderr(`cmd: Can't find service: ${service ?? ''}\n`);
  return 20;
};

export const packageCommands: ReadonlyMap<string, Command> = new Map([
  ['pm', pm],
  ['cmd', cmd],
]);
