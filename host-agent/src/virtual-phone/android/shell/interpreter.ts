import { posix } from 'node:path';
import { ByteQueue, ByteReader } from '../../byte-reader.js';
import type { AndroidDevice } from '../android-device.js';
import { FsError } from '../file-system.js';
import type { Command, CommandContext } from './command.js';
import { parse, type Redirect, ShellSyntaxError, type SimpleCommand } from './parse.js';

export interface ShellIo {
  stdin: ByteReader;
  stdout(data: Uint8Array): Promise<void>;
  stderr(data: Uint8Array): Promise<void>;
  signal: AbortSignal;
}

type Sink = (data: Uint8Array) => Promise<void>;

const encoder = new TextEncoder();
const toBytes = (data: string | Uint8Array): Uint8Array =>
  typeof data === 'string' ? encoder.encode(data) : data;

/** Thrown by `exit N` to unwind the whole script, as in sh. */
export class ShellExit extends Error {
  constructor(readonly status: number) {
    super(`exit ${status}`);
  }
}

/** `/system/bin/sh`: parses a command line and runs it against the device's programs. */
export class ShellInterpreter {
  readonly #device: AndroidDevice;
  readonly #commands: ReadonlyMap<string, Command>;
  readonly env: Record<string, string>;

  constructor(
    device: AndroidDevice,
    commands: ReadonlyMap<string, Command>,
    env: Record<string, string> = {},
  ) {
    this.#device = device;
    this.#commands = commands;
    this.env = { PATH: '/system/bin:/system/xbin', HOME: '/', ...env };
  }

  async run(line: string, io: ShellIo): Promise<number> {
    try {
      return await this.#runScript(line, io);
    } catch (error) {
      if (error instanceof ShellExit) return error.status;
      throw error;
    }
  }

  async #runScript(line: string, io: ShellIo): Promise<number> {
    let pipelines: ReturnType<typeof parse>;
    try {
      pipelines = parse(line);
    } catch (error) {
      if (!(error instanceof ShellSyntaxError)) throw error;
      await io.stderr(encoder.encode(`/system/bin/sh: ${error.message}\n`));
      return 2;
    }
    let status = 0;
    for (const pipeline of pipelines) {
      if (pipeline.join === '&&' && status !== 0) continue;
      if (pipeline.join === '||' && status === 0) continue;
      if (io.signal.aborted) return 130;
      status = await this.#runPipeline(pipeline.commands, io);
    }
    return status;
  }

  async #runPipeline(commands: SimpleCommand[], io: ShellIo): Promise<number> {
    let stdin = io.stdin;
    let status = 0;
    for (const [index, command] of commands.entries()) {
      const last = index === commands.length - 1;
      // Pipes are run one stage after another with the output buffered: enough for `cmd | grep`.
      const captured: Uint8Array[] = [];
      const stdout: Sink = last ? io.stdout : async (data) => void captured.push(data);
      status = await this.#runSimple(command, { ...io, stdin, stdout });
      if (!last) {
        const queue = new ByteQueue();
        for (const chunk of captured) queue.push(chunk);
        queue.end();
        stdin = new ByteReader(queue);
      }
    }
    return status;
  }

  async #runSimple(command: SimpleCommand, io: ShellIo): Promise<number> {
    if (command.argv.length === 0) {
      Object.assign(this.env, command.assignments);
      return 0;
    }
    const redirected = this.#redirect(command.redirects, io);
    if (typeof redirected === 'string') {
      await io.stderr(encoder.encode(`/system/bin/sh: ${redirected}\n`));
      return 1;
    }
    const name = command.argv[0]!;
    const program = this.#commands.get(posix.basename(name));
    if (!program) {
      await redirected.stderr(encoder.encode(`/system/bin/sh: ${name}: inaccessible or not found\n`));
      return 127;
    }
    const ctx: CommandContext = {
      device: this.#device,
      argv: command.argv,
      env: { ...this.env, ...command.assignments },
      stdin: redirected.stdin,
      stdout: (data) => redirected.stdout(toBytes(data)),
      stderr: (data) => redirected.stderr(toBytes(data)),
      signal: io.signal,
      run: (line) => this.#runScript(line, redirected),
    };
    try {
      const status = await program(ctx);
      await redirected.finish();
      return status;
    } catch (error) {
      if (error instanceof FsError) {
        await redirected.stderr(encoder.encode(`${posix.basename(name)}: ${error.message}\n`));
        return 1;
      }
      throw error;
    }
  }

  #redirect(redirects: Redirect[], io: ShellIo): (ShellIo & { finish(): Promise<void> }) | string {
    let { stdin, stdout, stderr } = io;
    const files: { path: string; append: boolean; chunks: Uint8Array[] }[] = [];
    for (const redirect of redirects) {
      if (redirect.kind === 'dup') {
        stderr = stdout;
        continue;
      }
      if (redirect.kind === 'read') {
        const entry = this.#device.fs.stat(redirect.target);
        if (entry?.type !== 'file') return `${redirect.target}: No such file or directory`;
        const queue = new ByteQueue();
        queue.push(entry.data);
        queue.end();
        stdin = new ByteReader(queue);
        continue;
      }
      const sink: Sink =
        redirect.target === '/dev/null'
          ? async () => {}
          : (() => {
              const file = {
                path: redirect.target,
                append: redirect.kind === 'append',
                chunks: [] as Uint8Array[],
              };
              files.push(file);
              return async (data: Uint8Array) => void file.chunks.push(data);
            })();
      if (redirect.fd === 2) stderr = sink;
      else stdout = sink;
    }
    const fs = this.#device.fs;
    return {
      stdin,
      stdout,
      stderr,
      signal: io.signal,
      async finish() {
        for (const file of files) {
          const before = file.append && fs.stat(file.path)?.type === 'file' ? [fs.read(file.path)] : [];
          fs.write(file.path, Buffer.concat([...before, ...file.chunks]));
        }
      },
    };
  }
}
