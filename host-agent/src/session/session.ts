import { setTimeout as sleep } from 'node:timers/promises';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { durationMs, timestampNow } from '@bufbuild/protobuf/wkt';
import { agentv1, createGrpcClient } from '@cphone/proto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import { Backoff, type BackoffOptions } from './backoff.js';

export type AgentMessageInit = MessageInitShape<typeof agentv1.AgentMessageSchema>;

/** One stream to the control plane, handed to the hooks. */
export interface SessionLink {
  /** Sends on this stream; false (and nothing sent) once it has ended. */
  send(message: AgentMessageInit): boolean;
  /** Aborts when this stream ends. */
  readonly signal: AbortSignal;
}

/** What the session asks of the agent. */
export interface SessionHooks {
  /** The Hello of a new stream, built fresh (inventory, revision) at each attempt. */
  hello(): Promise<MessageInitShape<typeof agentv1.HelloSchema>>;
  /** Live load for a heartbeat. */
  load(): Promise<MessageInitShape<typeof agentv1.HostLoadSchema>>;
  welcomed(welcome: agentv1.Welcome, link: SessionLink): void | Promise<void>;
  /** Every control message other than Welcome and Ping, in arrival order. */
  received(message: agentv1.ControlMessage, link: SessionLink): void;
}

export interface SessionOptions {
  /** host:port of the agent gateway. */
  readonly address: string;
  /**
   * TLS for each connection attempt; a function is called at every attempt, so a CA bundle changed
   * on disk (a CA rotation) is used from the next reconnect while the current stream stays up.
   */
  readonly credentials: grpc.ChannelCredentials | (() => grpc.ChannelCredentials);
  readonly channelOptions?: grpc.ClientOptions;
  readonly hooks: SessionHooks;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /** Reconnect delays. Default 500 ms base, 30 s cap, full jitter. */
  readonly backoff?: BackoffOptions;
  /** A stream welcomed this long ago resets the backoff. Default 10 s. */
  readonly stableAfterMs?: number;
  /** No Welcome within this ends the attempt. Default 30 s. */
  readonly welcomeTimeoutMs?: number;
  /** Heartbeat interval when Welcome names none. Default 10 s. */
  readonly defaultHeartbeatMs?: number;
}

/** Server verdicts that retrying soon cannot change: back off at the cap. */
const REJECTIONS = new Set([
  grpc.status.UNAUTHENTICATED,
  grpc.status.PERMISSION_DENIED,
  grpc.status.FAILED_PRECONDITION,
]);

// HTTP/2 pings find a dead TCP connection (a vanished control plane, a NAT that forgot the flow)
// even when neither side has anything to say. Rare enough for any proxy's ping policy.
const KEEPALIVE: grpc.ClientOptions = {
  'grpc.keepalive_time_ms': 60_000,
  'grpc.keepalive_timeout_ms': 20_000,
  'grpc.keepalive_permit_without_calls': 1,
};

interface AttemptOutcome {
  welcomedAt: number | undefined;
  code: grpc.status;
  details: string;
}

/**
 * The agent's side of AgentService.Connect: dial, Hello, Welcome, heartbeats, and reconnect with
 * exponential backoff and full jitter for as long as the agent runs. A rejection (bad credential,
 * unsupported protocol) is retried at the cap only. Each attempt uses a fresh channel, so this
 * backoff is the only one in play (grpc-js's own channel backoff would otherwise stack on it).
 */
export class Session {
  readonly #o: SessionOptions;
  readonly #log: Logger;
  readonly #backoff: Backoff;
  readonly #closing = new AbortController();
  #loop: Promise<void> | undefined;
  #current:
    | { call: grpc.ClientDuplexStream<agentv1.AgentMessage, agentv1.ControlMessage>; link: SessionLink }
    | undefined;
  #welcomed = false;

  constructor(options: SessionOptions) {
    this.#o = options;
    this.#log = options.logger.child({ module: 'session' });
    this.#backoff = new Backoff(options.backoff);
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** True while a stream is open and welcomed. */
  get connected(): boolean {
    return this.#welcomed;
  }

  /** Sends on the current stream (after its Hello); false when there is none. */
  send(message: AgentMessageInit): boolean {
    return this.#current?.link.send(message) ?? false;
  }

  /** Half-closes the stream, waits briefly for the server to end it, and stops reconnecting. */
  async close(): Promise<void> {
    this.#closing.abort();
    const current = this.#current;
    if (current !== undefined) {
      current.call.end();
      const timer = setTimeout(() => current.call.cancel(), 1000);
      await this.#loop;
      clearTimeout(timer);
    } else {
      await this.#loop;
    }
  }

  async #run(): Promise<void> {
    const signal = this.#closing.signal;
    while (!signal.aborted) {
      const outcome = await this.#attempt().catch((err: unknown) => {
        this.#log.error({ err }, 'session attempt failed');
        return {
          welcomedAt: undefined,
          code: grpc.status.INTERNAL,
          details: String(err),
        } satisfies AttemptOutcome;
      });
      if (signal.aborted) break;
      if (
        outcome.welcomedAt !== undefined &&
        Date.now() - outcome.welcomedAt >= (this.#o.stableAfterMs ?? 10_000)
      ) {
        this.#backoff.reset();
      }
      const rejected = REJECTIONS.has(outcome.code);
      const delayMs = rejected ? this.#backoff.atCap() : this.#backoff.next();
      this.#o.metrics?.sessionAttempts.inc({
        outcome: rejected ? 'rejected' : outcome.welcomedAt !== undefined ? 'welcomed' : 'failed',
      });
      const fields = { code: grpc.status[outcome.code], details: outcome.details, retryInMs: delayMs };
      if (rejected)
        this.#log.error(fields, 'control plane rejected the session; check host id, credential and version');
      else this.#log.warn(fields, 'session ended; reconnecting');
      await sleep(delayMs, undefined, { signal }).catch(() => undefined);
    }
  }

  async #attempt(): Promise<AttemptOutcome> {
    const credentials =
      typeof this.#o.credentials === 'function' ? this.#o.credentials() : this.#o.credentials;
    const client = createGrpcClient(agentv1.AgentService, this.#o.address, credentials, {
      ...KEEPALIVE,
      ...this.#o.channelOptions,
    });
    const ended = new AbortController();
    // Messages sent while Hello is being built wait for it, so none is lost or sent before it.
    let buffer: AgentMessageInit[] | undefined = [];
    let call: grpc.ClientDuplexStream<agentv1.AgentMessage, agentv1.ControlMessage> | undefined;
    const link: SessionLink = {
      signal: ended.signal,
      send: (message) => {
        if (ended.signal.aborted) return false;
        if (buffer !== undefined || call === undefined) {
          buffer?.push(message);
          return buffer !== undefined;
        }
        this.#o.metrics?.messagesSent.inc({ kind: message.body?.case ?? 'unknown' });
        call.write(create(agentv1.AgentMessageSchema, message));
        return true;
      },
    };
    let welcomedAt: number | undefined;
    let heartbeat: NodeJS.Timeout | undefined;
    let watchdog: NodeJS.Timeout | undefined;
    try {
      const hello = await this.#o.hooks.hello();
      if (this.#closing.signal.aborted)
        return { welcomedAt, code: grpc.status.CANCELLED, details: 'closing' };
      call = client.connect();
      this.#current = { call, link };
      call.write(create(agentv1.AgentMessageSchema, { body: { case: 'hello', value: hello } }));
      const queued = buffer;
      buffer = undefined;
      for (const message of queued) link.send(message);

      let lastReceived = Date.now();
      let ttlMs = 0;
      let pinged = false;
      const armWatchdog = (ttlMs: number) => {
        clearInterval(watchdog);
        watchdog = setInterval(
          () => {
            if (Date.now() - lastReceived > ttlMs) {
              this.#log.warn(
                { ttlMs },
                'nothing received from the control plane within the TTL; reconnecting',
              );
              call?.cancel();
            }
          },
          Math.max(50, ttlMs / 4),
        );
        watchdog.unref();
      };
      armWatchdog(this.#o.welcomeTimeoutMs ?? 30_000);

      return await new Promise<AttemptOutcome>((resolve) => {
        const finish = (code: grpc.status, details: string) => resolve({ welcomedAt, code, details });
        call!.on('data', (message: agentv1.ControlMessage) => {
          lastReceived = Date.now();
          const kind = message.body.case ?? 'unknown';
          this.#o.metrics?.messagesReceived.inc({ kind });
          if (message.body.case === 'welcome') {
            const welcome = message.body.value;
            welcomedAt = Date.now();
            this.#welcomed = true;
            this.#o.metrics?.sessionConnected.set(1);
            const intervalMs = welcome.heartbeatInterval
              ? durationMs(welcome.heartbeatInterval)
              : (this.#o.defaultHeartbeatMs ?? 10_000);
            ttlMs = welcome.heartbeatTtl ? durationMs(welcome.heartbeatTtl) : 0;
            // Silence is only a sign of a dead stream from a control plane that pings; until the
            // first Ping, transport keepalive finds dead connections.
            clearInterval(watchdog);
            this.#log.info(
              { replicaId: welcome.replicaId || undefined, heartbeatMs: intervalMs, ttlMs },
              'session welcomed',
            );
            heartbeat = this.#startHeartbeats(link, intervalMs);
            void Promise.resolve(this.#o.hooks.welcomed(welcome, link)).catch((err: unknown) =>
              this.#log.error({ err }, 'welcome handling failed'),
            );
          } else if (message.body.case === 'ping') {
            if (ttlMs > 0 && !pinged) armWatchdog(ttlMs);
            pinged = true;
            link.send({
              body: { case: 'pong', value: { nonce: message.body.value.nonce, sentAt: timestampNow() } },
            });
          } else if (welcomedAt === undefined) {
            this.#log.warn({ kind }, 'message before agentv1.Welcome ignored');
          } else {
            this.#o.hooks.received(message, link);
          }
        });
        call!.on('error', (err: grpc.ServiceError) =>
          finish(err.code ?? grpc.status.UNKNOWN, err.details ?? err.message),
        );
        call!.on('status', (status: grpc.StatusObject) => finish(status.code, status.details));
      });
    } finally {
      ended.abort();
      clearInterval(heartbeat);
      clearInterval(watchdog);
      if (this.#current?.link === link) this.#current = undefined;
      this.#welcomed = false;
      this.#o.metrics?.sessionConnected.set(0);
      client.close();
    }
  }

  #startHeartbeats(link: SessionLink, intervalMs: number): NodeJS.Timeout {
    let seq = 0n;
    let busy = false;
    const beat = async () => {
      if (busy) return; // a slow /proc read must not pile up heartbeats
      busy = true;
      try {
        const load = await this.#o.hooks.load();
        link.send({ body: { case: 'heartbeat', value: { seq: ++seq, sentAt: timestampNow(), load } } });
      } catch (err) {
        this.#log.warn({ err }, 'heartbeat not sent');
      } finally {
        busy = false;
      }
    };
    void beat();
    const timer = setInterval(() => void beat(), intervalMs);
    timer.unref();
    return timer;
  }
}
