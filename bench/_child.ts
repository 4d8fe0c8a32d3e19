// The benchmarks' child processes: a forked bench script that answers requests over IPC.
import { type ChildProcess, fork } from 'node:child_process';

/** A forked bench process answering requests over IPC (`id` pairs replies with requests). */
export class Child<Req extends { op: string }, Rep extends { op: string }> {
  #next = 0;
  readonly #waiting = new Map<number, (reply: Rep) => void>();
  readonly #ready: Promise<Rep>;
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    readonly process: ChildProcess,
  ) {
    let ready: (reply: Rep) => void = () => {};
    this.#ready = new Promise((r) => {
      ready = r;
    });
    process.on('message', (m: Rep & { id: number }) => {
      if (m.id === -1) return ready(m);
      this.#waiting.get(m.id)?.(m);
      this.#waiting.delete(m.id);
    });
    this.exited = new Promise((resolve) => process.once('exit', (code) => resolve(code)));
    void this.exited.then((code) => {
      if (this.#waiting.size > 0 || code !== 0) {
        console.error(`${name} process exited with code ${code}`);
        if (this.#waiting.size > 0) globalThis.process.exit(1);
      }
    });
  }

  static start<Req extends { op: string }, Rep extends { op: string }>(
    name: string,
    file: string,
    options: { env?: Record<string, string>; stdout?: number; execArgv?: string[] } = {},
  ): Child<Req, Rep> {
    const child = fork(new URL(file, import.meta.url).pathname, [], {
      execArgv: ['--import', 'tsx', '--expose-gc', ...(options.execArgv ?? [])],
      env: { ...process.env, ...options.env },
      stdio: ['ignore', options.stdout ?? 'inherit', 'inherit', 'ipc'],
    });
    return new Child<Req, Rep>(name, child);
  }

  ready(): Promise<Rep> {
    return this.#ready;
  }

  ask<R extends Rep>(request: Req): Promise<R> {
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve as (reply: Rep) => void);
      this.process.send({ ...request, id });
    });
  }

  async stop(): Promise<void> {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill('SIGTERM');
    await this.exited;
  }
}
