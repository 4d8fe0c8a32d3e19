// cphone adb connect DEVICE: remote ADB to a cloud phone, as STF's remote debugging. A local port
// on 127.0.0.1 whose connections ride a signed, short-lived, tenant-scoped tunnel token through the
// agent of the phone's host to its adbd (lib: cli/src/adb-tunnel). The phone's ADB port never
// faces the network. The command stays up until Ctrl-C; the platform audits each connection.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { Device } from '@cphone/proto/api';
import type { Command } from 'commander';
import { type LocalAdbTunnel, openAdbTunnel } from '../adb-tunnel/index.js';
import { action, type Ctx, examples, interrupted, intOption } from '../lib/command.js';
import { CliError, EXIT } from '../lib/errors.js';
import { printDoc } from '../lib/output.js';
import { resolveDevice } from '../lib/resolve.js';

interface TunnelFlags {
  port?: number;
  agentCa?: string;
  ttl?: number;
}

async function openTunnel(ctx: Ctx, device: Device, flags: TunnelFlags): Promise<LocalAdbTunnel> {
  const api = await ctx.api();
  // The agent endpoint's CA when it is private (a default agent makes its own): flag, else env.
  const agentCa = flags.agentCa || process.env.CPHONE_AGENT_CA_FILE;
  return openAdbTunnel({
    devices: api.devices,
    deviceId: device.deviceId,
    port: flags.port ?? 0,
    ...(agentCa ? { ca: await readFile(agentCa) } : {}),
    ...(flags.ttl ? { ttlSeconds: flags.ttl } : {}),
    onError: (e) => ctx.out.note(`tunnel: ${e.message}`),
  });
}

/** Debian's adb on PATH, or undefined. */
function adbPath(): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v adb'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() || undefined : undefined;
}

/** adb, asynchronously: the tunnel it talks through runs in this process's event loop. */
function runAdb(adb: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(adb, args, { encoding: 'utf8', timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code) || 1 : 0, out: `${stdout ?? ''}${stderr ?? ''}`.trim() }),
    );
  });
}

/**
 * `cphone devices shell DEVICE` on a terminal with no command: an interactive shell through the
 * tunnel, by the user's own adb (which gives it a pty). Resolves with adb's exit code.
 */
export async function interactiveAdbShell(ctx: Ctx, device: Device): Promise<number> {
  const adb = adbPath();
  if (!adb) {
    throw new CliError(
      'an interactive shell goes through adb, which is not on PATH (Debian: apt install adb); or give a command after --',
      EXIT.usage,
    );
  }
  const tunnel = await openTunnel(ctx, device, {});
  try {
    const connected = await runAdb(adb, ['connect', tunnel.address]);
    if (!/connected to/.test(connected.out))
      throw new CliError(`adb connect ${tunnel.address}: ${connected.out}`);
    const child = spawn(adb, ['-s', tunnel.address, 'shell'], { stdio: 'inherit' });
    return await new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  } finally {
    await runAdb(adb, ['disconnect', tunnel.address]);
    await tunnel.close();
  }
}

export function registerAdb(program: Command): void {
  const adb = program
    .command('adb')
    .description('remote ADB to a phone through the platform (adb, Android Studio, scrcpy)');
  examples(
    adb
      .command('connect')
      .description(
        'open a local port that `adb connect` reaches, carried to the phone; stays up until Ctrl-C',
      )
      .argument('<device>', 'device name or id')
      .option('--port <port>', 'local port on 127.0.0.1 (default: a free one)', intOption('--port', 0, 65535))
      .option('--connect', 'also run `adb connect` (and `adb disconnect` on exit) with the adb on PATH')
      .option(
        '--agent-ca <file>',
        "PEM CA of the agent's endpoint certificate, for wss with a private CA (CPHONE_AGENT_CA_FILE)",
      )
      .option(
        '--ttl <seconds>',
        'lifetime of each tunnel token (30..86400; renewed as needed)',
        intOption('--ttl', 30, 86_400),
      )
      .action(
        action<TunnelFlags & { connect?: boolean }>(async (ctx, [name], opts) => {
          const api = await ctx.api();
          const device = await resolveDevice(api, name as string, await ctx.tenant());
          const tunnel = await openTunnel(ctx, device, opts);
          const stop = interrupted();
          const adbBin = opts.connect ? adbPath() : undefined;
          try {
            if (ctx.out.format === 'json' || ctx.out.format === 'yaml') {
              printDoc(ctx.out, {
                deviceId: device.deviceId,
                displayName: device.displayName,
                address: tunnel.address,
                port: tunnel.port,
              });
            } else if (ctx.out.quiet) {
              ctx.out.write(`${tunnel.address}\n`);
            } else {
              ctx.out.write(
                [
                  `tunnel to ${device.displayName || device.deviceId} (${device.deviceId}) on ${tunnel.address}`,
                  opts.connect ? '' : `  adb connect ${tunnel.address}`,
                  `  adb -s ${tunnel.address} shell`,
                  `  scrcpy -s ${tunnel.address}`,
                  'Ctrl-C closes it.',
                  '',
                ]
                  .filter((l) => l !== '')
                  .join('\n')
                  .concat('\n'),
              );
            }
            if (opts.connect) {
              if (!adbBin)
                throw new CliError('--connect needs adb on PATH (Debian: apt install adb)', EXIT.usage);
              const r = await runAdb(adbBin, ['connect', tunnel.address]);
              ctx.out.note(r.out);
              if (!/connected to/.test(r.out)) throw new CliError(`adb connect ${tunnel.address}: ${r.out}`);
            }
            await stop.promise;
          } finally {
            stop.dispose();
            if (adbBin) await runAdb(adbBin, ['disconnect', tunnel.address]);
            await tunnel.close();
          }
        }),
      ),
    [
      'cphone adb connect "phone 1"                 # then: adb connect 127.0.0.1:PORT',
      'cphone adb connect dev_01hx... --port 15555 --connect',
      'addr=$(cphone adb connect "phone 1" -q &) ...   # -q prints only the address',
    ],
  );
}
