import type { ServiceHandler } from '../adb/device-connection.js';
import type { ServiceSocket } from '../adb/service-socket.js';
import type { AndroidDevice } from '../android/android-device.js';
import type { Command } from '../android/shell/command.js';
import { ShellInterpreter, type ShellIo } from '../android/shell/interpreter.js';
import { ByteQueue, ByteReader } from '../byte-reader.js';
import { encodeShellPacket, readShellPacket, ShellPacketId } from './shell-v2.js';

export interface ShellRequest {
  /** `v2`: framed stdout/stderr/exit (shell_v2); `raw`: bytes as-is, no exit status (shell v1, exec). */
  protocol: 'v2' | 'raw';
  /** Empty for an interactive shell. */
  command: string;
  env: Record<string, string>;
  /** A pty was asked for (`pty`, or no `raw` and no command, as adbd decides): prompt and echo. */
  pty: boolean;
}

/** Parses `shell[,arg…]:command`; `exec:command` is the raw form without a shell prompt. */
export function parseShellService(service: string): ShellRequest | undefined {
  if (service.startsWith('exec:')) return { protocol: 'raw', command: service.slice(5), env: {}, pty: false };
  const match = /^shell(,[^:]*)?:(.*)$/s.exec(service);
  if (!match) return undefined;
  const args = (match[1] ?? '').split(',').filter(Boolean);
  const env: Record<string, string> = {};
  for (const arg of args) {
    const eq = arg.indexOf('=');
    if (eq > 0) env[arg.slice(0, eq)] = arg.slice(eq + 1);
  }
  const command = match[2] ?? '';
  const pty = args.includes('pty') || (!args.includes('raw') && command.trim() === '');
  return { protocol: args.includes('v2') ? 'v2' : 'raw', command, env, pty };
}

export function shellService(
  device: AndroidDevice,
  commands: ReadonlyMap<string, Command>,
  request: ShellRequest,
): ServiceHandler {
  return async (socket) => {
    const stdin = new ByteQueue();
    const signal = AbortSignal.any([socket.signal, device.lifetime]);
    const pumping = request.protocol === 'v2' ? pumpV2Stdin(socket, stdin) : pumpRawStdin(socket, stdin);
    const out = (id: number) => (data: Uint8Array) =>
      socket.write(request.protocol === 'v2' ? encodeShellPacket(id, data) : data).catch(() => {});
    const io: ShellIo = {
      stdin: new ByteReader(stdin),
      stdout: out(ShellPacketId.Stdout),
      stderr: out(ShellPacketId.Stderr),
      signal,
    };
    const shell = new ShellInterpreter(device, commands, request.env);
    const status =
      request.command.trim() === ''
        ? await interactive(shell, io, device, request.pty)
        : await shell.run(request.command, io);
    if (request.protocol === 'v2' && !socket.isClosed) {
      await socket.write(encodeShellPacket(ShellPacketId.Exit, Uint8Array.of(status & 0xff))).catch(() => {});
    }
    await socket.close();
    await pumping;
  };
}

/**
 * `adb shell` without a command: one command per stdin line until `exit` or hang-up, with the
 * prompt Android's mksh shows (`<device>:/ $`, `#` as root) and the echo its pty gives.
 */
async function interactive(
  shell: ShellInterpreter,
  io: ShellIo,
  device: AndroidDevice,
  pty: boolean,
): Promise<number> {
  let status = 0;
  let pending = '';
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  const prompt = async () => {
    if (!pty) return;
    const root = device.properties.get('service.adb.root') === '1';
    await io.stdout(
      encoder.encode(`${device.properties.get('ro.product.device') || 'redroid'}:/ ${root ? '#' : '$'} `),
    );
  };
  await prompt();
  for (let chunk = await io.stdin.read(); chunk; chunk = await io.stdin.read()) {
    const text = decoder.decode(chunk, { stream: true });
    if (pty) await io.stdout(encoder.encode(text.replace(/\r\n?|\n/g, '\r\n')));
    pending += text;
    for (let newline = pending.search(/[\r\n]/); newline !== -1; newline = pending.search(/[\r\n]/)) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      if (/^\s*exit(\s|$)/.test(line)) return Number.parseInt(line.trim().split(/\s+/)[1] ?? `${status}`, 10);
      if (line.trim()) status = await shell.run(line, io);
      await prompt();
    }
  }
  return status;
}

async function pumpV2Stdin(socket: ServiceSocket, stdin: ByteQueue): Promise<void> {
  const reader = new ByteReader(socket);
  try {
    for (let packet = await readShellPacket(reader); packet; packet = await readShellPacket(reader)) {
      if (packet.id === ShellPacketId.Stdin) stdin.push(packet.payload);
      else if (packet.id === ShellPacketId.CloseStdin) stdin.end();
      // Window size changes only matter to a pty; there is none here.
    }
  } catch {
    // a torn packet at hang-up
  } finally {
    stdin.end();
  }
}

async function pumpRawStdin(socket: ServiceSocket, stdin: ByteQueue): Promise<void> {
  for (let chunk = await socket.read(); chunk; chunk = await socket.read()) stdin.push(chunk);
  stdin.end();
}
