// The agents of bench/placements.ts, run as a child process: one real AgentService.Connect stream
// per host over TLS, STREAMS_PER_CONNECTION streams multiplexed on each HTTP/2 connection, each
// saying Hello (no devices: the hosts start empty; at most HELLOS_IN_FLIGHT unanswered at a time)
// and then heartbeating every 10 s, spread evenly over the interval. What the control plane sends back (Welcome, desired device sets as creates
// land, pings) is read and not acted on: these agents run no phones. A stream that ends is opened
// again after a short jittered wait, as a real agent does.
import { create } from '@bufbuild/protobuf';
import { CONTROL_PLANE_VERSION, createAgentClient } from '@cphone/control-plane/testing';
import { agentv1, type GrpcClient } from '@cphone/proto';
import type * as grpc from '@grpc/grpc-js';
import type { EnrolledHost } from './_placements-control-plane.js';

export const STREAMS_PER_CONNECTION = 500;
const HEARTBEAT_MS = 10_000;
const HELLOS_IN_FLIGHT = 200;

export type AgentsRequest =
  | { op: 'connect'; port: number; caPem: string; hosts: EnrolledHost[] }
  | { op: 'status' }
  | { op: 'stop' };

export type AgentsReply =
  | { op: 'ready' }
  | {
      op: 'status';
      welcomed: number;
      live: number;
      /** Desired device sets received (one per create that landed on the host, at most). */
      desiredSets: number;
      ended: number;
      /** Why streams ended: gRPC status code and details, with how many. */
      ends: Record<string, number>;
    };

interface Agent {
  host: EnrolledHost;
  call: grpc.ClientDuplexStream<agentv1.AgentMessage, agentv1.ControlMessage> | undefined;
  welcomed: boolean;
  seq: bigint;
}

const agents: Agent[] = [];
const clients: GrpcClient<typeof agentv1.AgentService>[] = [];
let welcomed = 0;
let desiredSets = 0;
let ended = 0;
const ends = new Map<string, number>();
let stopped = false;
let timer: NodeJS.Timeout | undefined;

function open(agent: Agent, client: GrpcClient<typeof agentv1.AgentService>): void {
  if (stopped) return;
  const call = client.connect() as grpc.ClientDuplexStream<agentv1.AgentMessage, agentv1.ControlMessage>;
  agent.call = call;
  call.on('data', (message: agentv1.ControlMessage) => {
    if (message.body.case === 'welcome') {
      if (!agent.welcomed) welcomed++;
      agent.welcomed = true;
    } else if (message.body.case === 'desiredDevices') desiredSets++;
  });
  let retried = false;
  const retry = (status?: { code?: number; details?: string }) => {
    if (retried || stopped) return;
    retried = true;
    ended++;
    const why = `${status?.code ?? '?'} ${status?.details ?? ''}`.slice(0, 100);
    ends.set(why, (ends.get(why) ?? 0) + 1);
    agent.call = undefined;
    setTimeout(() => open(agent, client), 200 + Math.random() * 800);
  };
  call.on('error', retry);
  call.on('status', retry);
  call.write(
    create(agentv1.AgentMessageSchema, {
      body: {
        case: 'hello',
        value: {
          hostId: agent.host.hostId,
          credential: agent.host.credential,
          protocolVersion: 1,
          agentVersion: CONTROL_PLANE_VERSION,
          arch: 'arm64',
          runtimeKind: 'sim',
          agentInstanceId: 'bench',
          devices: [],
        },
      },
    }),
  );
}

async function connect(port: number, caPem: string, hosts: EnrolledHost[]): Promise<void> {
  const connections = Math.ceil(hosts.length / STREAMS_PER_CONNECTION);
  for (let c = 0; c < connections; c++) {
    clients.push(
      createAgentClient(port, caPem, {
        'grpc.keepalive_time_ms': 120_000,
        'grpc-node.max_session_memory': 1 << 30,
      }),
    );
  }
  // Heartbeats run from the start: the first agents welcomed must not go silent while the rest connect.
  const tick = 100;
  const slices = HEARTBEAT_MS / tick;
  let slice = 0;
  timer = setInterval(() => {
    for (let i = slice; i < agents.length; i += slices) {
      const agent = agents[i];
      if (!agent?.call || !agent.welcomed) continue;
      agent.seq++;
      agent.call.write(
        create(agentv1.AgentMessageSchema, { body: { case: 'heartbeat', value: { seq: agent.seq } } }),
      );
    }
    slice = (slice + 1) % slices;
  }, tick);
  for (const [i, host] of hosts.entries()) {
    const agent: Agent = { host, call: undefined, welcomed: false, seq: 0n };
    agents.push(agent);
    const client = clients[Math.floor(i / STREAMS_PER_CONNECTION)];
    if (client) open(agent, client);
    // At most HELLOS_IN_FLIGHT Hellos unanswered: the fleet connects as fast as the control plane
    // welcomes it, without Hellos timing out and coming back as a retry storm (that storm is what
    // bench/fleet.ts measures; here the connect is only the set-up).
    while (agents.length - welcomed >= HELLOS_IN_FLIGHT) await new Promise((r) => setTimeout(r, 10));
  }
}

async function handle(request: AgentsRequest): Promise<AgentsReply> {
  switch (request.op) {
    case 'connect':
      await connect(request.port, request.caPem, request.hosts);
      return status();
    case 'status':
      return status();
    case 'stop':
      stopped = true;
      clearInterval(timer);
      for (const agent of agents) agent.call?.cancel();
      for (const client of clients) client.close();
      return status();
  }
}

function status(): AgentsReply {
  return {
    op: 'status',
    welcomed,
    live: agents.filter((a) => a.call !== undefined && a.welcomed).length,
    desiredSets,
    ended,
    ends: Object.fromEntries(ends),
  };
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
