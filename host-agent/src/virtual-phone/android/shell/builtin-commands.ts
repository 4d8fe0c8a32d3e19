import { posix } from 'node:path';
import { type FsEntry, fileSize } from '../file-system.js';
import { type Command, type CommandContext, resolvePath } from './command.js';
import { ShellExit } from './interpreter.js';

function modeString(entry: FsEntry): string {
  const bits = 'rwxrwxrwx';
  let out = entry.type === 'dir' ? 'd' : '-';
  for (let i = 0; i < 9; i++) out += entry.mode & (1 << (8 - i)) ? bits[i] : '-';
  return out;
}

function longLine(name: string, entry: FsEntry): string {
  const date = new Date(entry.mtime * 1000).toISOString();
  return `${modeString(entry)} 1 root root ${String(fileSize(entry)).padStart(8)} ${date.slice(0, 10)} ${date.slice(11, 16)} ${name}\n`;
}

const echo: Command = async ({ argv, stdout }) => {
  let args = argv.slice(1);
  let newline = true;
  if (args[0] === '-n') {
    newline = false;
    args = args.slice(1);
  }
  await stdout(args.join(' ') + (newline ? '\n' : ''));
  return 0;
};

const cat: Command = async (ctx) => {
  const { argv, device, stdin, stdout } = ctx;
  const files = argv.slice(1);
  if (files.length === 0) {
    for (let chunk = await stdin.read(); chunk; chunk = await stdin.read()) await stdout(chunk);
    return 0;
  }
  for (const file of files) await stdout(device.fs.read(resolvePath(ctx, file)));
  return 0;
};

const ls: Command = async (ctx) => {
  const { argv, device, stdout, stderr } = ctx;
  const flags = argv
    .slice(1)
    .filter((a) => a.startsWith('-'))
    .join('');
  const paths = argv.slice(1).filter((a) => !a.startsWith('-'));
  const long = flags.includes('l');
  let status = 0;
  for (const path of paths.length ? paths : ['.']) {
    const entry = device.fs.stat(resolvePath(ctx, path));
    if (!entry) {
      await stderr(`ls: ${path}: No such file or directory\n`);
      status = 1;
      continue;
    }
    if (entry.type === 'file' || flags.includes('d')) {
      await stdout(long ? longLine(path, entry) : `${path}\n`);
      continue;
    }
    const lines = device.fs
      .list(resolvePath(ctx, path))
      .map(({ name, entry: child }) => (long ? longLine(name, child) : `${name}\n`));
    await stdout((long ? `total ${lines.length}\n` : '') + lines.join(''));
  }
  return status;
};

const rm: Command = async (ctx) => {
  const { argv, device, stderr } = ctx;
  const flags = argv
    .slice(1)
    .filter((a) => a.startsWith('-'))
    .join('');
  let status = 0;
  for (const path of argv.slice(1).filter((a) => !a.startsWith('-'))) {
    if (!device.fs.stat(resolvePath(ctx, path))) {
      if (!flags.includes('f')) {
        await stderr(`rm: ${path}: No such file or directory\n`);
        status = 1;
      }
      continue;
    }
    device.fs.remove(resolvePath(ctx, path), { recursive: flags.includes('r') || flags.includes('R') });
  }
  return status;
};

const mkdir: Command = async (ctx) => {
  for (const path of ctx.argv.slice(1).filter((a) => !a.startsWith('-')))
    ctx.device.fs.mkdirs(resolvePath(ctx, path));
  return 0;
};

const sh: Command = async (ctx) => {
  const index = ctx.argv.indexOf('-c');
  if (index === -1) return 0;
  try {
    return await ctx.run(ctx.argv[index + 1] ?? '');
  } catch (error) {
    // `exit` inside `sh -c` ends that shell only.
    if (error instanceof ShellExit) return error.status;
    throw error;
  }
};

const sleep: Command = async ({ argv, signal }) => {
  const ms = Number.parseFloat(argv[1] ?? '0') * 1000;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
  return 0;
};

const getprop: Command = async ({ argv, device, stdout }) => {
  const key = argv[1];
  await stdout(
    key === undefined ? device.properties.dump() : `${device.properties.get(key) || (argv[2] ?? '')}\n`,
  );
  return 0;
};

const setprop: Command = async ({ argv, device, stderr }) => {
  const [, key, value] = argv;
  if (key === undefined || value === undefined) {
    await stderr('setprop: need 2 arguments\n');
    return 1;
  }
  if (!device.properties.set(key, value)) {
    await stderr(`setprop: failed to set property '${key}' to '${value}'\n`);
    return 1;
  }
  return 0;
};

/** After `adb root` adbd (and so every shell it starts) runs as root, as on a userdebug build. */
const asRoot = (ctx: CommandContext): boolean => ctx.device.properties.get('service.adb.root') === '1';

const id: Command = async (ctx) => {
  await ctx.stdout(
    asRoot(ctx)
      ? 'uid=0(root) gid=0(root) groups=0(root),1004(input),1007(log),1011(adb),1015(sdcard_rw),1028(sdcard_r),3001(net_bt_admin),3002(net_bt),3003(inet),3006(net_bw_stats),3009(readproc),3011(uhid) context=u:r:su:s0\n'
      : 'uid=2000(shell) gid=2000(shell) groups=2000(shell),1004(input),1007(log),1015(sdcard_rw) context=u:r:shell:s0\n',
  );
  return 0;
};

const whoami: Command = async (ctx) => {
  await ctx.stdout(asRoot(ctx) ? 'root\n' : 'shell\n');
  return 0;
};

const wm: Command = async ({ argv, device, stdout }) => {
  if (argv[1] === 'density') await stdout(`Physical density: ${device.screen.dpi}\n`);
  else await stdout(`Physical size: ${device.screen.width}x${device.screen.height}\n`);
  return 0;
};

const dumpsys: Command = async ({ argv, stdout }) => {
  if (argv[1] === 'battery') {
    await stdout(
      'Current Battery Service state:\n  AC powered: true\n  USB powered: false\n  Wireless powered: false\n' +
        '  status: 2\n  health: 2\n  present: true\n  level: 100\n  scale: 100\n  voltage: 5000\n  temperature: 250\n  technology: Li-ion\n',
    );
  }
  return 0;
};

const am: Command = async ({ argv, device, stdout, stderr }) => {
  if (argv[1] !== 'start') {
    await stderr(`Unknown command: ${argv[1] ?? ''}\n`);
    return 1;
  }
  const n = argv.indexOf('-n');
  const component = n === -1 ? undefined : argv[n + 1];
  const pkg = component?.split('/')[0];
  if (!component || !pkg || !device.packages.get(pkg)) {
    await stdout(`Starting: Intent { cmp=${component ?? ''} }\n`);
    await stderr(`Error type 3\nError: Activity class {${component ?? ''}} does not exist.\n`);
    return 1;
  }
  device.logcat.log('I', 'ActivityTaskManager', `START u0 {cmp=${component}}`);
  await stdout(`Starting: Intent { cmp=${component} }\n`);
  return 0;
};

const trueCommand: Command = async () => 0;
const falseCommand: Command = async () => 1;

export const builtinCommands: ReadonlyMap<string, Command> = new Map<string, Command>([
  ['echo', echo],
  ['cat', cat],
  ['ls', ls],
  ['rm', rm],
  ['mkdir', mkdir],
  ['sh', sh],
  ['sleep', sleep],
  ['getprop', getprop],
  ['setprop', setprop],
  ['id', id],
  ['whoami', whoami],
  ['wm', wm],
  ['dumpsys', dumpsys],
  ['am', am],
  ['true', trueCommand],
  ['false', falseCommand],
  [
    'basename',
    async ({ argv, stdout }) => {
      await stdout(`${posix.basename(argv[1] ?? '')}\n`);
      return 0;
    },
  ],
]);
