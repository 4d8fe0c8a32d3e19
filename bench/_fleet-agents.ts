// The agents of bench/fleet.ts, run as a child process (the bench starts several side by side) and
// driven over IPC. Each host runs the host agent's own Session: a fresh grpc-js channel per attempt,
// Hello, heartbeats at the Welcome's interval, pongs, and the real reconnect backoff (500 ms base,
// full jitter). On top of it each agent converges at once: every desired device is reported
// RUNNING, and a shell command is answered on the stream with a CommandResult shaped as the
// agent's command runner sends it (the phone itself is not run: no ADB round trip is measured).
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { AGENT_VERSION, Session, type SessionHooks, type SessionLink } from '@cphone/host-agent';
import { agentv1 } from '@cphone/proto';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';

export interface FleetHost {
  hostId: string;
  credential: string;
}

export type AgentsRequest =
  | { op: 'start'; hosts: FleetHost[]; port: number; caPem: string; perSecond: number }
  | { op: 'stats' }
  | { op: 'mark' }
  | { op: 'close' };

export type AgentsReply =
  | { op: 'ready' }
  | { op: 'started'; count: number }
  | {
      op: 'stats';
      agents: number;
      /** Agents whose current stream is welcomed. */
      connected: number;
      /** Agents welcomed at least once since the last mark (or ever, before any mark). */
      welcomedSinceMark: number;
      welcomes: number;
      /** Devices this process reports RUNNING. */
      running: number;
      commands: number;
      rss: number;
    }
  | { op: 'mark' }
  | { op: 'close' };

const logger = pino({ level: 'silent' });
const CHANNEL_OPTIONS: grpc.ClientOptions = {
  // The gateway's certificate names localhost; TLS must not be given an IP address as the name.
  'grpc.ssl_target_name_override': 'localhost',
  'grpc.default_authority': 'localhost',
  // grpc-js shares one connection among channels of one process with equal target, credentials
  // and options (its global subchannel pool). A real agent is alone in its process; here thousands
  // are, so each channel keeps a pool of its own: one TCP + TLS connection per agent.
  'grpc.use_local_subchannel_pool': 1,
};

class BenchAgent implements SessionHooks {
  readonly session: Session;
  welcomes = 0;
  mark = 0;
  commands = 0;
  /** device id -> what this agent reports of it. */
  readonly devices = new Map<string, { tenantId: string; specRevision: bigint; restartGeneration: bigint }>();

  constructor(
    readonly host: FleetHost,
    port: number,
    credentials: grpc.ChannelCredentials,
  ) {
    this.session = new Session({
      address: `127.0.0.1:${port}`,
      credentials,
      channelOptions: CHANNEL_OPTIONS,
      hooks: this,
      logger,
    });
  }

  async hello() {
    return {
      hostId: this.host.hostId,
      credential: this.host.credential,
      protocolVersion: agentv1.ProtocolVersion.V1,
      agentVersion: AGENT_VERSION,
      arch: 'arm64',
      runtimeKind: 'sim',
      agentInstanceId: `bench-${this.host.hostId}`,
      devices: [...this.devices].map(([deviceId, d]) => ({
        deviceId,
        tenantId: d.tenantId,
        state: agentv1.DeviceState.RUNNING,
        specRevision: d.specRevision,
        restartGeneration: d.restartGeneration,
      })),
    };
  }

  async load() {
    return { runningDevices: this.devices.size };
  }

  welcomed(): void {
    this.welcomes++;
  }

  received(message: agentv1.ControlMessage, link: SessionLink): void {
    const body = message.body;
    switch (body.case) {
      case 'desiredDevices': {
        const wanted = new Set(body.value.devices.map((d) => d.deviceId));
        for (const id of [...this.devices.keys()]) if (!wanted.has(id)) this.#remove(id, link);
        for (const d of body.value.devices) this.#converge(d, link);
        return;
      }
      case 'deviceUpsert':
        if (body.value.device) this.#converge(body.value.device, link);
        return;
      case 'deviceRemove':
        this.#remove(body.value.deviceId, link);
        return;
      case 'command':
        this.#command(body.value, link);
        return;
      default:
        return;
    }
  }

  #converge(d: agentv1.DesiredDevice, link: SessionLink): void {
    const known = this.devices.get(d.deviceId);
    if (known?.specRevision === d.specRevision && known.restartGeneration === d.restartGeneration) return;
    const device = {
      tenantId: d.tenantId,
      specRevision: d.specRevision,
      restartGeneration: d.restartGeneration,
    };
    this.devices.set(d.deviceId, device);
    link.send({
      body: {
        case: 'deviceStatus',
        value: {
          device: {
            deviceId: d.deviceId,
            ...device,
            state: agentv1.DeviceState.RUNNING,
            observedAt: timestampFromDate(new Date()),
          },
        },
      },
    });
  }

  #remove(deviceId: string, link: SessionLink): void {
    if (!this.devices.delete(deviceId)) return;
    link.send({
      body: { case: 'deviceStatus', value: { device: { deviceId, state: agentv1.DeviceState.DELETED } } },
    });
  }

  #command(command: agentv1.Command, link: SessionLink): void {
    this.commands++;
    const finishedAt = timestampFromDate(new Date());
    if (!this.devices.has(command.deviceId)) {
      link.send({
        body: {
          case: 'commandResult',
          value: {
            commandId: command.commandId,
            code: agentv1.CommandCode.NOT_FOUND,
            message: `device ${JSON.stringify(command.deviceId)} is not on this host`,
            finishedAt,
          },
        },
      });
      return;
    }
    const result =
      command.kind.case === 'shell'
        ? ({ case: 'shell', value: { exitCode: 0, stdout: Buffer.from('ok\n') } } as const)
        : undefined;
    link.send({
      body: {
        case: 'commandResult',
        value: result
          ? { commandId: command.commandId, code: agentv1.CommandCode.OK, finishedAt, result }
          : {
              commandId: command.commandId,
              code: agentv1.CommandCode.UNIMPLEMENTED,
              message: 'the bench agent answers shell commands only',
              finishedAt,
            },
      },
    });
  }
}

const agents: BenchAgent[] = [];

/** Starts sessions for `hosts`, `perSecond` of them a second (ten at a time). */
async function start(hosts: FleetHost[], port: number, caPem: string, perSecond: number): Promise<void> {
  const credentials = grpc.credentials.createSsl(Buffer.from(caPem));
  const began = performance.now();
  for (let i = 0; i < hosts.length; i++) {
    const host = hosts[i];
    if (!host) continue;
    const agent = new BenchAgent(host, port, credentials);
    agents.push(agent);
    agent.session.start();
    if (i % 10 === 9) await sleep(Math.max(0, began + ((i + 1) * 1000) / perSecond - performance.now()));
  }
}

async function handle(request: AgentsRequest): Promise<AgentsReply> {
  switch (request.op) {
    case 'start':
      await start(request.hosts, request.port, request.caPem, request.perSecond);
      return { op: 'started', count: agents.length };
    case 'stats': {
      let connected = 0;
      let welcomedSinceMark = 0;
      let welcomes = 0;
      let running = 0;
      let commands = 0;
      for (const a of agents) {
        if (a.session.connected) connected++;
        if (a.welcomes > a.mark) welcomedSinceMark++;
        welcomes += a.welcomes;
        running += a.devices.size;
        commands += a.commands;
      }
      return {
        op: 'stats',
        agents: agents.length,
        connected,
        welcomedSinceMark,
        welcomes,
        running,
        commands,
        rss: process.memoryUsage().rss,
      };
    }
    case 'mark':
      for (const a of agents) a.mark = a.welcomes;
      return { op: 'mark' };
    case 'close':
      await Promise.all(agents.map((a) => a.session.close()));
      return { op: 'close' };
  }
}

process.on('message', (message: AgentsRequest & { id: number }) => {
  void handle(message).then(
    (reply) => process.send?.({ ...reply, id: message.id }),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
});
process.once('SIGTERM', () => process.exit(0));
process.send?.({ op: 'ready', id: -1 });
