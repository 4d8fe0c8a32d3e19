import { posix } from 'node:path';
import { ByteQueue, ByteReader } from '../../byte-reader.js';
import type { AndroidDevice } from '../android-device.js';
import { FsError } from '../file-system.js';
import type { Command, CommandContext } from './command.js';
import { ExpansionError, type ExpansionScope, expandPattern, expandString, expandWords } from './expand.js';
import {
  type List,
  type Command as Node,
  type Pipeline,
  parse,
  type Redirect,
  ShellSyntaxError,
} from './parse.js';
import { applyRedirects } from './redirect.js';
import { type Builtin, shellBuiltins } from './shell-builtins.js';
import { evaluateTest, globToRegExp, TestError } from './test-expression.js';

export interface ShellIo {
  stdin: ByteReader;
  stdout(data: Uint8Array): Promise<void>;
  stderr(data: Uint8Array): Promise<void>;
  signal: AbortSignal;
}

const encoder = new TextEncoder();
const toBytes = (data: string | Uint8Array): Uint8Array =>
  typeof data === 'string' ? encoder.encode(data) : data;

/** Thrown by `exit N` to unwind the whole script, as in sh. */
export class ShellExit extends Error {
  constructor(readonly status: number) {
    super(`exit ${status}`);
  }
}

/** `break N` / `continue N` unwinding to the enclosing loop. */
export class LoopControl extends Error {
  constructor(
    readonly kind: 'break' | 'continue',
    public levels: number,
  ) {
    super(kind);
  }
}

/** `return N` out of a function. */
export class FunctionReturn extends Error {
  constructor(readonly status: number) {
    super('return');
  }
}

/** Variables, functions, positional parameters and cwd: what a subshell copies. */
export interface ShellState {
  vars: Map<string, string>;
  exported: Set<string>;
  functions: Map<string, Node>;
  positional: string[];
  status: number;
  cwd: string;
  pid: number;
}

let nextPid = 4000;

/**
 * `/system/bin/sh`: runs a parsed script against the device's programs. Pipeline stages run at
 * once, joined by streaming pipes (`logcat | grep` follows live), the last one in this shell as
 * mksh does; a stage whose reader is gone is stopped as by SIGPIPE.
 */
export class ShellInterpreter implements ExpansionScope {
  readonly #device: AndroidDevice;
  readonly #commands: ReadonlyMap<string, Command>;
  readonly state: ShellState;
  /** The streams expansion (`$(…)`) runs with: those of the command being expanded. */
  #io: ShellIo | undefined;

  /** `env`: the variables adb passes (TERM …), exported; `state` continues another shell's. */
  constructor(
    device: AndroidDevice,
    commands: ReadonlyMap<string, Command>,
    env: Record<string, string> = {},
    state?: ShellState,
  ) {
    this.#device = device;
    this.#commands = commands;
    const vars = new Map(Object.entries({ PATH: '/system/bin:/system/xbin', HOME: '/', ...env }));
    this.state = state ?? {
      vars,
      exported: new Set(vars.keys()),
      functions: new Map(),
      positional: [],
      status: 0,
      cwd: '/',
      pid: nextPid++,
    };
  }

  get device(): AndroidDevice {
    return this.#device;
  }
  get commands(): ReadonlyMap<string, Command> {
    return this.#commands;
  }
  get env(): Record<string, string> {
    const env: Record<string, string> = {};
    for (const name of this.state.exported) {
      const value = this.state.vars.get(name);
      if (value !== undefined) env[name] = value;
    }
    return env;
  }

  // ExpansionScope
  get(name: string): string | undefined {
    return this.state.vars.get(name);
  }
  set(name: string, value: string): void {
    this.state.vars.set(name, value);
  }
  get positional(): readonly string[] {
    return this.state.positional;
  }
  get status(): number {
    return this.state.status;
  }
  get pid(): number {
    return this.state.pid;
  }
  get cwd(): string {
    return this.state.cwd;
  }
  get fs() {
    return this.#device.fs;
  }
  async substitute(body: List): Promise<string> {
    const io = this.#io;
    if (!io) throw new Error('command substitution outside a command');
    const chunks: Uint8Array[] = [];
    const sub = this.subshell();
    const status = await sub.#guard(() =>
      sub.runList(body, { ...io, stdout: async (d) => void chunks.push(d) }),
    );
    this.state.status = status;
    return Buffer.concat(chunks).toString('utf8').replace(/\n+$/, '');
  }

  /** A child shell with a copy of this one's state. */
  subshell(): ShellInterpreter {
    const s = this.state;
    return new ShellInterpreter(
      this.#device,
      this.#commands,
      {},
      {
        vars: new Map(s.vars),
        exported: new Set(s.exported),
        functions: new Map(s.functions),
        positional: [...s.positional],
        status: s.status,
        cwd: s.cwd,
        pid: nextPid++,
      },
    );
  }

  resolve(path: string): string {
    return posix.resolve(this.state.cwd, path);
  }

  /** Parses and runs a script; syntax errors print as mksh's and give status 2. */
  async run(script: string, io: ShellIo): Promise<number> {
    return this.#guard(() => this.runScript(script, io));
  }

  async runScript(script: string, io: ShellIo): Promise<number> {
    let list: List;
    try {
      list = parse(script);
    } catch (error) {
      if (!(error instanceof ShellSyntaxError)) throw error;
      await io.stderr(encoder.encode(`/system/bin/sh: ${error.message}\n`));
      this.state.status = 2;
      return 2;
    }
    return this.runList(list, io);
  }

  /** Runs `fn`, turning `exit` (and a stray break/return) into the shell's exit status. */
  async #guard(fn: () => Promise<number>): Promise<number> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof ShellExit || error instanceof FunctionReturn) return error.status;
      if (error instanceof LoopControl) return 0;
      throw error;
    }
  }

  async runList(list: List, io: ShellIo): Promise<number> {
    let status = this.state.status;
    for (const andOr of list) {
      if (io.signal.aborted) throw new ShellExit(130);
      status = await this.#pipeline(andOr.first, io);
      for (const { op, pipeline } of andOr.rest) {
        if ((op === '&&') === (status === 0)) status = await this.#pipeline(pipeline, io);
      }
    }
    return status;
  }

  async #pipeline(pipeline: Pipeline, io: ShellIo): Promise<number> {
    const { commands } = pipeline;
    let status: number;
    if (commands.length === 1) {
      status = await this.#command(commands[0]!, io);
    } else {
      const stops = commands.map(() => new AbortController());
      const runs: Promise<number>[] = [];
      let stdin = io.stdin;
      for (const [k, node] of commands.entries()) {
        const last = k === commands.length - 1;
        const pipe = last ? undefined : new ByteQueue();
        const stageIo: ShellIo = {
          stdin,
          stdout: pipe ? async (data) => pipe.push(data) : io.stdout,
          stderr: io.stderr,
          signal: AbortSignal.any([io.signal, stops[k]!.signal]),
        };
        const shell = last ? this : this.subshell();
        runs.push(shell.#guard(() => shell.#command(node, stageIo)).finally(() => pipe?.end()));
        if (pipe) stdin = new ByteReader(pipe);
      }
      status = await runs.at(-1)!;
      for (const stop of stops) stop.abort();
      await Promise.allSettled(runs);
    }
    if (pipeline.negated) status = status === 0 ? 1 : 0;
    this.state.status = status;
    return status;
  }

  async #command(node: Node, outer: ShellIo): Promise<number> {
    if (node.kind === 'simple') return this.#simple(node, outer);
    if (node.kind === 'function') {
      this.state.functions.set(node.name, node.body);
      return 0;
    }
    const io = await this.#redirect(node.redirects, outer);
    if (typeof io === 'number') return io;
    switch (node.kind) {
      case 'group': {
        if (!node.subshell) return this.runList(node.body, io);
        const sub = this.subshell();
        return sub.#guard(() => sub.runList(node.body, io));
      }
      case 'if': {
        for (const branch of node.branches) {
          if ((await this.runList(branch.cond, io)) === 0) return this.runList(branch.body, io);
        }
        return node.otherwise ? this.runList(node.otherwise, io) : 0;
      }
      case 'loop': {
        let status = 0;
        for (;;) {
          if (io.signal.aborted) throw new ShellExit(130);
          if (((await this.runList(node.cond, io)) === 0) === node.until) break;
          const control = await this.#loopBody(node.body, io);
          status = control.status;
          if (control.stop) break;
        }
        return status;
      }
      case 'for': {
        this.#io = io;
        const items = node.items ? await expandWords(node.items, this) : [...this.state.positional];
        let status = 0;
        for (const item of items) {
          if (io.signal.aborted) throw new ShellExit(130);
          this.state.vars.set(node.name, item);
          const control = await this.#loopBody(node.body, io);
          status = control.status;
          if (control.stop) break;
        }
        return status;
      }
      case 'case': {
        this.#io = io;
        const word = await expandString(node.word, this);
        for (const item of node.items) {
          for (const pattern of item.patterns) {
            if (globToRegExp(await expandPattern(pattern, this)).test(word))
              return this.runList(item.body, io);
          }
        }
        return 0;
      }
      case 'test':
        return this.#doubleBracket(node.args, io);
    }
  }

  async #loopBody(body: List, io: ShellIo): Promise<{ status: number; stop: boolean }> {
    try {
      return { status: await this.runList(body, io), stop: false };
    } catch (error) {
      if (!(error instanceof LoopControl)) throw error;
      if (--error.levels > 0) throw error;
      return { status: 0, stop: error.kind === 'break' };
    }
  }

  async #doubleBracket(args: (string | import('./parse.js').Word)[], io: ShellIo): Promise<number> {
    this.#io = io;
    const strings: string[] = [];
    const patterns = new Set<number>();
    for (const [k, arg] of args.entries()) {
      if (typeof arg === 'string') strings.push(arg);
      else if (k > 0 && (args[k - 1] === '==' || args[k - 1] === '!=' || args[k - 1] === '=')) {
        patterns.add(strings.length);
        strings.push(await expandPattern(arg, this));
      } else strings.push(await expandString(arg, this));
    }
    // Operators arrive as plain words from the parser; mark the ones `[[` treats as such.
    try {
      return evaluateTest(strings, this.fs, (p) => this.resolve(p), { doubleBracket: true, patterns })
        ? 0
        : 1;
    } catch (error) {
      if (!(error instanceof TestError)) throw error;
      await io.stderr(encoder.encode(`/system/bin/sh: [[: ${error.message}\n`));
      return 2;
    }
  }

  async #simple(node: Extract<Node, { kind: 'simple' }>, outer: ShellIo): Promise<number> {
    this.#io = outer;
    let argv: string[];
    const assignments: [string, string][] = [];
    try {
      argv = await expandWords(node.words, this);
      for (const { name, value } of node.assignments)
        assignments.push([name, await expandString(value, this)]);
    } catch (error) {
      if (!(error instanceof ExpansionError)) throw error;
      await outer.stderr(encoder.encode(`/system/bin/sh: ${error.message}\n`));
      return 1;
    }
    const io = await this.#redirect(node.redirects, outer);
    if (typeof io === 'number') return io;
    if (argv.length === 0) {
      for (const [name, value] of assignments) this.state.vars.set(name, value);
      return node.words.length > 0 ? 0 : this.state.status;
    }
    return this.execute(argv, io, assignments);
  }

  /** Runs a function, a builtin or a program by name (also `exec`'s and `command`'s way in). */
  async execute(argv: string[], io: ShellIo, assignments: [string, string][] = []): Promise<number> {
    const name = argv[0]!;
    const fn = this.state.functions.get(name);
    if (fn) {
      const saved = this.state.positional;
      this.state.positional = argv.slice(1);
      try {
        return await this.#command(fn, io);
      } catch (error) {
        if (error instanceof FunctionReturn) return error.status;
        throw error;
      } finally {
        this.state.positional = saved;
      }
    }
    const builtin: Builtin | undefined = shellBuiltins.get(name);
    if (builtin) return builtin(this, argv, io);
    const program = this.#commands.get(posix.basename(name));
    if (!program) {
      await io.stderr(encoder.encode(`/system/bin/sh: ${name}: inaccessible or not found\n`));
      return 127;
    }
    const ctx: CommandContext = {
      device: this.#device,
      argv,
      env: { ...this.env, ...Object.fromEntries(assignments) },
      cwd: this.state.cwd,
      stdin: io.stdin,
      stdout: (data) => io.stdout(toBytes(data)),
      stderr: (data) => io.stderr(toBytes(data)),
      signal: io.signal,
      run: (script) => this.subshell().runScript(script, io),
    };
    try {
      return await program(ctx);
    } catch (error) {
      if (error instanceof FsError) {
        await io.stderr(encoder.encode(`${posix.basename(name)}: ${error.message}\n`));
        return 1;
      }
      throw error;
    }
  }

  /** Applies redirections left to right; a failure prints as sh does and gives status 1. */
  #redirect(redirects: readonly Redirect[], io: ShellIo): Promise<ShellIo | number> {
    if (redirects.length === 0) return Promise.resolve(io);
    this.#io = io;
    return applyRedirects(this, redirects, io);
  }
}
