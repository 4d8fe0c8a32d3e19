// Test support: the control-plane side of AgentService.Connect over real gRPC + TLS on loopback.
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { durationFromMs, timestampNow } from '@bufbuild/protobuf/wkt';
import {
  addGrpcService,
  agentv1,
  createCertificateAuthority,
  issueServerCertificate,
  type PemKeyPair,
} from '@cphone/proto';
import * as grpc from '@grpc/grpc-js';

export type ControlMessageInit = MessageInitShape<typeof agentv1.ControlMessageSchema>;

export interface TestControlPlaneOptions {
  heartbeatIntervalMs?: number;
  heartbeatTtlMs?: number;
  /** Close every stream with this status right after Hello (UNAUTHENTICATED ...). */
  reject?: grpc.status;
  /** Sent after Welcome. */
  desired?: () => agentv1.DesiredDevices | undefined;
  /** Store and acknowledge usage reports as they arrive; false drops them unacknowledged. Default true. */
  ackUsage?: boolean;
}

type Call = grpc.ServerDuplexStream<agentv1.AgentMessage, agentv1.ControlMessage>;

/**
 * A control plane that speaks the real protocol: Welcome (with the stored usage mark), the desired
 * set, usage acks; it records every Hello and message. stop() and start() on the same port model
 * a control-plane restart.
 */
export class TestControlPlane {
  readonly hellos: agentv1.Hello[] = [];
  readonly messages: agentv1.AgentMessage[] = [];
  /** Usage sequences stored, in arrival order (duplicates included). */
  readonly usageReceived: bigint[] = [];
  /** Highest contiguous stored usage sequence (what a real control plane acks). */
  usageStored = 0n;
  readonly options: TestControlPlaneOptions;
  port = 0;
  ca!: PemKeyPair;
  #leaf!: PemKeyPair;
  #server: grpc.Server | undefined;
  #calls = new Set<Call>();

  constructor(options: TestControlPlaneOptions = {}) {
    this.options = options;
  }

  static async create(options: TestControlPlaneOptions = {}): Promise<TestControlPlane> {
    const cp = new TestControlPlane(options);
    cp.ca = await createCertificateAuthority('test agent CA');
    cp.#leaf = await issueServerCertificate(cp.ca, { commonName: 'control-plane' });
    await cp.start();
    return cp;
  }

  async start(): Promise<void> {
    const server = new grpc.Server();
    addGrpcService(server, agentv1.AgentService, { connect: (call) => this.#connect(call) });
    const credentials = grpc.ServerCredentials.createSsl(Buffer.from(this.ca.cert), [
      { cert_chain: Buffer.from(this.#leaf.cert), private_key: Buffer.from(this.#leaf.key) },
    ]);
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${this.port}`, credentials, (err, port) =>
        err ? reject(err) : resolve(port),
      ),
    );
    this.#server = server;
  }

  /** Drops every stream and stops listening (a crash of the control plane). */
  stop(): void {
    this.#server?.forceShutdown();
    this.#server = undefined;
    this.#calls.clear();
  }

  get streams(): number {
    return this.#calls.size;
  }

  /** Sends to every open stream. */
  send(message: ControlMessageInit): void {
    for (const call of this.#calls) call.write(create(agentv1.ControlMessageSchema, message));
  }

  of<K extends NonNullable<agentv1.AgentMessage['body']['case']>>(kind: K) {
    return this.messages
      .filter((m) => m.body.case === kind)
      .map((m) => m.body.value as Extract<agentv1.AgentMessage['body'], { case: K }>['value']);
  }

  #connect(call: Call): void {
    let hello: agentv1.Hello | undefined;
    call.on('data', (message: agentv1.AgentMessage) => {
      if (hello === undefined) {
        if (message.body.case !== 'hello') {
          call.emit('error', {
            code: grpc.status.FAILED_PRECONDITION,
            details: 'first message must be Hello',
          });
          return;
        }
        hello = message.body.value;
        this.hellos.push(hello);
        if (this.options.reject !== undefined) {
          call.emit('error', { code: this.options.reject, details: 'rejected by the test control plane' });
          return;
        }
        this.#calls.add(call);
        call.write(
          create(agentv1.ControlMessageSchema, {
            body: {
              case: 'welcome',
              value: {
                hostId: hello.hostId,
                heartbeatInterval: durationFromMs(this.options.heartbeatIntervalMs ?? 100),
                heartbeatTtl: durationFromMs(this.options.heartbeatTtlMs ?? 0),
                serverTime: timestampNow(),
                minProtocolVersion: 1,
                maxProtocolVersion: 1,
                usageAckSequence: this.usageStored,
                replicaId: 'test',
              },
            },
          }),
        );
        const desired = this.options.desired?.();
        if (desired !== undefined)
          call.write(
            create(agentv1.ControlMessageSchema, { body: { case: 'desiredDevices', value: desired } }),
          );
        return;
      }
      this.messages.push(message);
      if (message.body.case === 'usageReport') {
        const storing = this.options.ackUsage ?? true;
        for (const sample of message.body.value.samples) {
          this.usageReceived.push(sample.sequence);
          // With acks off the control plane loses what it gets (it fails before storing).
          if (storing && sample.sequence === this.usageStored + 1n) this.usageStored = sample.sequence;
        }
        if (storing) {
          call.write(
            create(agentv1.ControlMessageSchema, {
              body: { case: 'usageAck', value: { sequence: this.usageStored } },
            }),
          );
        }
      }
    });
    call.on('end', () => {
      this.#calls.delete(call);
      call.end();
    });
    call.on('error', () => this.#calls.delete(call));
    call.on('cancelled', () => this.#calls.delete(call));
  }
}
