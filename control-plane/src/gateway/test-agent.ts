// A scriptable agent speaking the real AgentService protocol over TLS, for tests of the gateway and
// of anything that drives hosts through it. It records what the control plane sends and lets a
// test wait for a message by kind.
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { agentv1, createGrpcClient, type GrpcClient } from '@cphone/proto';
import * as grpc from '@grpc/grpc-js';
import { CONTROL_PLANE_VERSION } from './hello.js';

type Body = agentv1.ControlMessage['body'];
type Case = NonNullable<Body['case']>;
type ValueOf<C extends Case> = Extract<Body, { case: C }>['value'];
type AgentBody = Exclude<MessageInitShape<typeof agentv1.AgentMessageSchema>['body'], undefined>;

/** Makes a client trusting the gateway's CA. Several agents may share one client (one channel). */
export function createAgentClient(port: number, caPem: string, options: grpc.ClientOptions = {}) {
  // The certificate names localhost; TLS must not be given an IP address as the server name.
  return createGrpcClient(
    agentv1.AgentService,
    `127.0.0.1:${port}`,
    grpc.credentials.createSsl(Buffer.from(caPem)),
    {
      'grpc.ssl_target_name_override': 'localhost',
      'grpc.default_authority': 'localhost',
      ...options,
    },
  );
}

interface Waiter {
  match: (message: agentv1.ControlMessage) => boolean;
  resolve: (message: agentv1.ControlMessage) => void;
}

export class TestAgent {
  readonly received: agentv1.ControlMessage[] = [];
  /** Settles with the stream's final status (OK included). */
  readonly ended: Promise<grpc.StatusObject>;
  readonly call: grpc.ClientDuplexStream<agentv1.AgentMessage, agentv1.ControlMessage>;
  #waiters: Waiter[] = [];
  #heartbeat: NodeJS.Timeout | undefined;
  #seq = 0n;

  constructor(client: GrpcClient<typeof agentv1.AgentService>) {
    this.call = client.connect();
    this.call.on('data', (message: agentv1.ControlMessage) => {
      this.received.push(message);
      const waiter = this.#waiters.find((w) => w.match(message));
      if (waiter) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        waiter.resolve(message);
      }
    });
    this.ended = new Promise((resolve) => {
      this.call.on('status', (status: grpc.StatusObject) => resolve(status));
      // A stream reset arrives as an error whose code is the status.
      this.call.on('error', (error: grpc.ServiceError) =>
        resolve({ code: error.code, details: error.details, metadata: error.metadata }),
      );
    });
    this.ended.finally(() => this.stopHeartbeats());
  }

  /** Opens a stream and sends Hello (protocol version 1 and this control plane's release unless given). */
  static connect(
    client: GrpcClient<typeof agentv1.AgentService>,
    hello: MessageInitShape<typeof agentv1.HelloSchema>,
  ): TestAgent {
    const agent = new TestAgent(client);
    agent.send({
      case: 'hello',
      value: { protocolVersion: agentv1.ProtocolVersion.V1, agentVersion: CONTROL_PLANE_VERSION, ...hello },
    });
    return agent;
  }

  send(body: AgentBody): void {
    this.call.write(create(agentv1.AgentMessageSchema, { body }));
  }

  /** The next message of a kind (already received and not yet taken, or still to come). */
  next<C extends Case>(kind: C, timeoutMs = 5000, where: (value: ValueOf<C>) => boolean = () => true) {
    const match = (m: agentv1.ControlMessage) => m.body.case === kind && where(m.body.value as ValueOf<C>);
    const index = this.received.findIndex(match);
    if (index >= 0) {
      const [message] = this.received.splice(index, 1);
      return Promise.resolve(message?.body.value as ValueOf<C>);
    }
    return new Promise<ValueOf<C>>((resolve, reject) => {
      // ValueOf<C> is a conditional type TypeScript cannot check against PromiseLike.
      const settle = resolve as (value: unknown) => void;
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`no ${kind} within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter: Waiter = {
        match,
        resolve: (message) => {
          clearTimeout(timer);
          this.received.splice(this.received.indexOf(message), 1);
          settle(message.body.value);
        },
      };
      this.#waiters.push(waiter);
    });
  }

  heartbeat(): void {
    this.#seq++;
    this.send({
      case: 'heartbeat',
      value: { seq: this.#seq, load: { cpuPercent: 12.5, runningDevices: 1 } },
    });
  }

  /**
   * Resolves once the gateway has handled everything this agent sent before: it handles one
   * stream's messages one at a time in arrival order, and answers a usage report (here one with no
   * samples, which stores nothing) with a UsageAck only after handling it. A test uses it to know
   * that a report or heartbeat has taken effect, or that one that must change nothing has had its
   * chance. Call it while no other usage report of this agent awaits its ack.
   */
  async roundTrip(timeoutMs = 5000): Promise<void> {
    const acked = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`no usageAck within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter: Waiter = {
        match: (m) => m.body.case === 'usageAck',
        resolve: (message) => {
          clearTimeout(timer);
          this.received.splice(this.received.indexOf(message), 1);
          resolve();
        },
      };
      // Registered before the report goes out, and not matched against what already arrived: only
      // the answer to this report will do.
      this.#waiters.push(waiter);
    });
    this.send({ case: 'usageReport', value: { samples: [] } });
    return acked;
  }

  startHeartbeats(intervalMs: number): void {
    this.stopHeartbeats();
    this.#heartbeat = setInterval(() => this.heartbeat(), intervalMs);
  }

  stopHeartbeats(): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }

  /** Half-closes the stream and waits for the control plane's status. */
  async end(): Promise<grpc.StatusObject> {
    this.stopHeartbeats();
    this.call.end();
    return this.ended;
  }

  /** Drops the stream abruptly (as a crashed agent would). */
  cancel(): void {
    this.stopHeartbeats();
    this.call.cancel();
  }
}
