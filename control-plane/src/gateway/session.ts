// One agent stream: Hello, then heartbeats, observed state, command results and usage in; Welcome,
// desired state, commands, usage acks and drains out. Inbound messages are handled one at a time
// in arrival order; outbound ones are bounded so a slow agent costs a bounded amount of memory.

import { create } from '@bufbuild/protobuf';
import { durationFromMs, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { agentv1 } from '@cphone/proto';
import * as grpc from '@grpc/grpc-js';
import { applyAdbTunnelReport } from '../adb-tunnels/adb-tunnel-service.js';
import { fingerprint, loadDesiredSet } from '../devices/desired-set.js';
import {
  applyObserved,
  applyObservedIn,
  completeUnseenDeletions,
  type Observed,
  type ObservedChange,
} from '../devices/observed.js';
import { grpcStatusOf, isInternal } from '../error-codes.js';
import { NotFoundError, UnavailableError } from '../errors.js';
import type { HeartbeatWriter } from '../hosts/heartbeats.js';
import { newId } from '../ids.js';
import type { Logger } from '../logger.js';
import { recordHello } from '../store/hosts.js';
import type { HostConnection } from '../store/schema.js';
import { revokedInForce } from '../store/streams.js';
import { applyStreamReport } from '../streams/reports.js';
import { ingestUsage, usageCursor } from '../usage/intake.js';
import { authenticateHost } from './credentials.js';
import {
  checkAgentVersion,
  checkIdentity,
  checkProtocolVersion,
  helloFacts,
  loadJson,
  MAX_PROTOCOL_VERSION,
  MIN_PROTOCOL_VERSION,
} from './hello.js';
import { PendingCommands } from './pending-commands.js';
import { closeCall, statusOf } from './stream-status.js';
import type { CommandKind, GatewayDeps, StreamRevocationInit } from './types.js';

export type AgentCall = grpc.ServerDuplexStream<agentv1.AgentMessage, agentv1.ControlMessage>;

/** What a session needs from its gateway. */
export interface SessionContext {
  readonly deps: GatewayDeps;
  readonly logger: Logger;
  readonly heartbeats: HeartbeatWriter;
  readonly replicaId: string;
  /** Outbound messages a stream may buffer before it is cut off with RESOURCE_EXHAUSTED. */
  readonly maxQueuedMessages: number;
  /** The first message must arrive within this long. */
  readonly helloTimeoutMs: number;
  /**
   * Once the Hello arrived, Welcome must follow within this long: long enough for a Hello queued
   * behind thousands of others for the database in a reconnect storm, short enough that a stream
   * whose Hello went nowhere is closed.
   */
  readonly helloHandlingTimeoutMs: number;
  /** The session passed Hello: make it the host's one live stream (superseding any other). */
  register(session: AgentSession): void;
  unregister(session: AgentSession): void;
  /**
   * The Hello is committed: this replica now holds the host's stream; `heldBy` is the replica that
   * held it before (null when none did), whose stream, if still open, is stale.
   */
  accepted?(hostId: string, heldBy: string | null): void;
}

// Inbound messages waiting for their turn before the stream stops reading (HTTP/2 flow control
// then slows the agent down).
const INBOUND_HIGH_WATER = 64;
const INBOUND_LOW_WATER = 16;
// Wait this long after a desiredChanged before reading the set, so bursts share one read.
const COALESCE_MS = 5;

export class AgentSession {
  hostId: string | undefined;
  /** clock time (ms) of the last message from the agent. */
  lastSeenMs: number;
  readonly pending: PendingCommands;
  #log: Logger;
  #closed = false;
  #helloTimer: NodeJS.Timeout | undefined;
  #helloArrived = false;
  #inbound: Promise<void> = Promise.resolve();
  #inboundDepth = 0;
  #paused = false;
  // Desired state as last sent: device id -> fingerprint, and the revision.
  #sent = new Map<string, string>();
  // Devices the agent has heard of in this session (sent to it, in its inventory, reported by it):
  // a device deleted that it never heard of has nothing on the host to remove.
  #told = new Set<string>();
  #sentRevision = -1n;
  #needFull = true;
  #dirty = false;
  #syncing = false;
  #pings = 0n;

  constructor(
    private readonly call: AgentCall,
    private readonly ctx: SessionContext,
  ) {
    this.#log = ctx.logger;
    this.lastSeenMs = this.#now().getTime();
    this.pending = new PendingCommands(ctx.deps.metrics);
  }

  get closed(): boolean {
    return this.#closed;
  }

  start(): void {
    this.#helloTimer = setTimeout(
      () => this.close(grpc.status.DEADLINE_EXCEEDED, `no hello within ${this.ctx.helloTimeoutMs} ms`),
      this.ctx.helloTimeoutMs,
    );
    this.call.on('data', (message: agentv1.AgentMessage) => this.#enqueue(message));
    this.call.on('end', () => this.close(grpc.status.OK, 'agent closed the stream'));
    this.call.on('cancelled', () =>
      this.close(grpc.status.CANCELLED, 'agent went away', { sendStatus: false }),
    );
    this.call.on('error', (err: unknown) => {
      if (!this.#closed) this.#log.debug({ err }, 'agent stream error');
      this.close(grpc.status.UNAVAILABLE, 'stream error', { sendStatus: false });
    });
  }

  /**
   * Ends the stream with a status (the agent reconnects), rejects pending commands, clears timers.
   * Idempotent.
   */
  close(code: grpc.status, details: string, options: { sendStatus?: boolean } = {}): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#helloTimer);
    this.ctx.unregister(this);
    this.pending.rejectAll(
      new UnavailableError(`host ${JSON.stringify(this.hostId ?? '?')} stream closed: ${details}`),
    );
    if (options.sendStatus !== false) closeCall(this.call, code, details);
    this.ctx.deps.metrics.agentStreamEnds.inc({ code: statusOf(code) });
    const level = code === grpc.status.OK || code === grpc.status.CANCELLED ? 'debug' : 'info';
    this.#log[level]({ code: statusOf(code), details }, 'agent stream closed');
  }

  /** Queues a message for the agent; false when the stream is closed (or was just cut off). */
  send(message: agentv1.ControlMessage): boolean {
    if (this.#closed) return false;
    if (this.call.writableLength >= this.ctx.maxQueuedMessages) {
      this.close(
        grpc.status.RESOURCE_EXHAUSTED,
        `agent is not reading: ${this.call.writableLength} messages queued; reconnect for a fresh desired set`,
      );
      return false;
    }
    this.call.write(message);
    return true;
  }

  /** The host's desired set changed: send what differs from what this stream was last told. */
  desiredChanged(): void {
    if (this.#closed || this.hostId === undefined) return;
    this.#dirty = true;
    if (!this.#syncing) void this.#syncLoop();
  }

  command(deviceId: string, kind: CommandKind, deadline: Date): Promise<agentv1.CommandResult> {
    const commandId = newId('cmd');
    const result = this.pending.add(
      commandId,
      { kind: kind.case, hostId: this.hostId ?? '', deviceId },
      deadline.getTime() - this.#now().getTime(),
    );
    const sent = this.send(
      create(agentv1.ControlMessageSchema, {
        body: {
          case: 'command',
          value: { commandId, deviceId, deadline: timestampFromDate(deadline), kind },
        },
      }),
    );
    if (!sent) {
      this.pending.reject(
        commandId,
        new UnavailableError(`host ${JSON.stringify(this.hostId)} is not connected`),
      );
    }
    return result;
  }

  /** A round-trip probe; also what keeps an idle agent from reconnecting (it waits a TTL for anything). */
  ping(): boolean {
    this.#pings++;
    return this.send(
      create(agentv1.ControlMessageSchema, {
        body: { case: 'ping', value: { nonce: this.#pings, sentAt: timestampFromDate(this.#now()) } },
      }),
    );
  }

  drain(reason: string, deadline?: Date): boolean {
    return this.send(
      create(agentv1.ControlMessageSchema, {
        body: {
          case: 'drain',
          value: deadline ? { reason, deadline: timestampFromDate(deadline) } : { reason },
        },
      }),
    );
  }

  #now(): Date {
    return this.ctx.deps.clock.now();
  }

  #enqueue(message: agentv1.AgentMessage): void {
    if (this.hostId === undefined && this.#inboundDepth === 0 && this.#helloTimer && !this.#helloArrived) {
      this.#helloArrived = true;
      // Under a reconnect storm the Hello may queue behind thousands of others for the database:
      // its handling gets a bound of its own, still ending a stream that never gets a Welcome.
      clearTimeout(this.#helloTimer);
      this.#helloTimer = setTimeout(
        () =>
          this.close(
            grpc.status.DEADLINE_EXCEEDED,
            `hello not accepted within ${this.ctx.helloHandlingTimeoutMs} ms`,
          ),
        this.ctx.helloHandlingTimeoutMs,
      );
    }
    this.lastSeenMs = this.#now().getTime();
    this.ctx.deps.metrics.agentMessages.inc({ kind: message.body.case ?? 'unknown' });
    this.#inboundDepth++;
    if (this.#inboundDepth >= INBOUND_HIGH_WATER && !this.#paused) {
      this.#paused = true;
      this.call.pause();
    }
    this.#inbound = this.#inbound
      .then(() => (this.#closed ? undefined : this.#handle(message)))
      .catch((err: unknown) => {
        this.#log.error({ err, kind: message.body.case }, 'agent message failed');
        // Before Welcome nothing may hang: a stream whose Hello failed is closed with a code.
        if (this.hostId === undefined) this.#refuse(err);
      })
      .finally(() => {
        this.#inboundDepth--;
        if (this.#paused && this.#inboundDepth <= INBOUND_LOW_WATER && !this.#closed) {
          this.#paused = false;
          this.call.resume();
        }
      });
  }

  async #handle(message: agentv1.AgentMessage): Promise<void> {
    const body = message.body;
    if (this.hostId === undefined) {
      if (body.case !== 'hello') {
        this.close(
          grpc.status.INVALID_ARGUMENT,
          `the first message must be hello, not ${body.case ?? 'empty'}`,
        );
        return;
      }
      await this.#hello(body.value);
      return;
    }
    switch (body.case) {
      case 'heartbeat':
        this.ctx.heartbeats.record(this.hostId, { time: this.#now(), load: loadJson(body.value.load) });
        return;
      case 'deviceStatus':
        return this.#deviceStatus(body.value);
      case 'commandResult':
        if (!this.pending.resolve(body.value)) {
          this.#log.debug(
            { commandId: body.value.commandId },
            'result for no pending command (late or unknown)',
          );
        }
        return;
      case 'usageReport':
        return this.#usage(body.value);
      case 'streamSessionReport':
        await applyStreamReport(this.ctx.deps.db, this.hostId, body.value, this.#now());
        return;
      case 'adbTunnelReport':
        await applyAdbTunnelReport(this.ctx.deps, this.hostId, body.value, this.#now());
        return;
      case 'hello':
        this.#log.warn('second hello on one stream ignored');
        return;
      default:
        return;
    }
  }

  async #hello(hello: agentv1.Hello): Promise<void> {
    const { db } = this.ctx.deps;
    try {
      checkProtocolVersion(hello.protocolVersion);
      checkAgentVersion(hello.agentVersion);
      checkIdentity(hello);
      await authenticateHost(db, hello.hostId, hello.credential);
    } catch (error) {
      this.#refuse(error);
      return;
    }
    if (this.#closed) return;
    this.hostId = hello.hostId;
    this.#log = this.ctx.logger.child({ hostId: hello.hostId, agentInstanceId: hello.agentInstanceId });
    this.ctx.register(this);
    const now = this.#now();
    let accepted: { previous: HostConnection; heldBy: string | null; acked: number; observed: Observed };
    try {
      // One transaction: a reconnect storm of thousands of hosts pays one commit per Hello. The
      // reported devices are locked before the host row (the lock order of store/hosts.ts).
      accepted = await db.transaction().execute(async (trx) => {
        const observed = await applyObservedIn(trx, hello.hostId, hello.devices, {
          fullInventory: true,
          now,
        });
        const before = await recordHello(trx, hello.hostId, helloFacts(hello), this.ctx.replicaId, now);
        if (!before) throw new NotFoundError('host', hello.hostId);
        return {
          previous: before.connection,
          heldBy: before.heldBy,
          acked: await usageCursor(trx, hello.hostId),
          observed,
        };
      });
    } catch (err) {
      if (err instanceof NotFoundError) return this.close(grpc.status.UNAUTHENTICATED, err.message);
      this.#log.error({ err }, 'accepting the hello failed');
      return this.close(grpc.status.UNAVAILABLE, 'the control plane could not accept the hello; retry');
    }
    this.#logChanges(accepted.observed.changes);
    this.ctx.deps.planner.settle(accepted.observed.applied);
    for (const device of hello.devices) this.#told.add(device.deviceId);
    const { config } = this.ctx.deps;
    const welcomed = this.send(
      create(agentv1.ControlMessageSchema, {
        body: {
          case: 'welcome',
          value: {
            hostId: hello.hostId,
            heartbeatInterval: durationFromMs(config.heartbeatIntervalMs),
            heartbeatTtl: durationFromMs(config.heartbeatTtlMs),
            serverTime: timestampFromDate(this.#now()),
            minProtocolVersion: MIN_PROTOCOL_VERSION,
            maxProtocolVersion: MAX_PROTOCOL_VERSION,
            usageAckSequence: BigInt(accepted.acked),
            streamTokenKeys: this.#streamKeys(),
            replicaId: this.ctx.replicaId,
          },
        },
      }),
    );
    if (!welcomed) return;
    clearTimeout(this.#helloTimer);
    this.ctx.accepted?.(hello.hostId, accepted.heldBy);
    if (accepted.previous !== 'ready') this.ctx.deps.metrics.hostConnectionChanges.inc({ to: 'ready' });
    this.#log.info(
      { from: accepted.previous, agentVersion: hello.agentVersion, inventory: hello.devices.length },
      'agent connected',
    );
    this.#needFull = true;
    this.desiredChanged();
    await this.#revocationsInForce(hello.hostId);
  }

  /** The keys stream tokens are signed with, as agents receive them. */
  #streamKeys() {
    return (this.ctx.deps.streams?.keys.current.verifyKeys ?? []).map((k) => ({
      keyId: k.keyId,
      algorithm: 'Ed25519',
      publicKey: k.publicKey,
    }));
  }

  /** Sends the current stream token keys (after a rotation). */
  sendStreamKeys(): boolean {
    if (this.hostId === undefined) return false;
    return this.send(
      create(agentv1.ControlMessageSchema, {
        body: { case: 'streamKeys', value: { keys: this.#streamKeys() } },
      }),
    );
  }

  /** Tells the agent to end stream sessions now. */
  revokeStreams(revocation: StreamRevocationInit): boolean {
    if (this.hostId === undefined) return false;
    return this.send(
      create(agentv1.ControlMessageSchema, {
        body: {
          case: 'streamRevocation',
          value: {
            sessionId: revocation.sessionId ?? '',
            deviceId: revocation.deviceId ?? '',
            tenantId: revocation.tenantId ?? '',
            reason: revocation.reason,
            message: revocation.message,
            ...(revocation.issuedBefore ? { issuedBefore: timestampFromDate(revocation.issuedBefore) } : {}),
          },
        },
      }),
    );
  }

  /**
   * A reconnecting agent may have missed revocations (or restarted and forgotten them): every
   * session of this host ended by the control plane whose token is still in force is sent again.
   */
  async #revocationsInForce(hostId: string): Promise<void> {
    try {
      for (const s of await revokedInForce(this.ctx.deps.db, hostId, this.#now())) {
        this.revokeStreams({
          sessionId: s.id,
          reason: s.end_reason,
          message: 'the stream session has ended',
        });
      }
    } catch (err) {
      this.#log.warn({ err }, 'resending stream revocations failed');
    }
  }

  /** Ends a stream that has not been welcomed, with the code the error maps to. */
  #refuse(error: unknown): void {
    if (isInternal(error)) {
      this.#log.error({ err: error }, 'hello check failed');
      this.close(grpc.status.UNAVAILABLE, 'the control plane could not check the hello');
      return;
    }
    const { code, details } = grpcStatusOf(error);
    this.close(code, details);
  }

  async #deviceStatus(status: agentv1.DeviceStatus): Promise<void> {
    if (!status.device || this.hostId === undefined) return;
    this.#told.add(status.device.deviceId);
    const observed = await applyObserved(this.ctx.deps.db, this.hostId, [status.device], {
      fullInventory: false,
      now: this.#now(),
    });
    this.#logChanges(observed.changes);
    this.ctx.deps.planner.settle(observed.applied);
  }

  #logChanges(changes: readonly ObservedChange[]): void {
    for (const change of changes) {
      if (change.refused) this.#log.warn(change, 'agent report refused by the state machine');
      else this.#log.info(change, 'device state observed');
    }
  }

  async #usage(report: agentv1.UsageReport): Promise<void> {
    if (this.hostId === undefined) return;
    const now = this.#now();
    const intake = await ingestUsage(this.ctx.deps.db, this.hostId, report.samples, now);
    const { usageSamples, usageIntakeLag } = this.ctx.deps.metrics;
    for (const end of intake.insertedEnds) usageIntakeLag.observe(Math.max(0, now.getTime() - end) / 1000);
    if (intake.inserted) usageSamples.inc({ result: 'inserted' }, intake.inserted);
    if (intake.duplicates) usageSamples.inc({ result: 'duplicate' }, intake.duplicates);
    if (intake.malformed) usageSamples.inc({ result: 'rejected' }, intake.malformed);
    if (intake.foreign) {
      usageSamples.inc({ result: 'foreign' }, intake.foreign);
      this.#log.warn({ samples: intake.foreign }, 'usage samples for devices not on this host refused');
    }
    if (intake.tenantMismatches) {
      usageSamples.inc({ result: 'tenant_mismatch' }, intake.tenantMismatches);
      this.#log.warn(
        { samples: intake.tenantMismatches },
        'usage samples named another tenant than their device',
      );
    }
    this.send(
      create(agentv1.ControlMessageSchema, {
        body: { case: 'usageAck', value: { sequence: BigInt(intake.ackedSequence) } },
      }),
    );
  }

  async #syncLoop(): Promise<void> {
    this.#syncing = true;
    try {
      while (this.#dirty && !this.#closed) {
        await new Promise((resolve) => setTimeout(resolve, COALESCE_MS));
        this.#dirty = false;
        await this.#syncOnce();
      }
    } catch (err) {
      // The set is level-triggered: a reconnect (or the next change) resends it in full.
      this.#log.error({ err }, 'desired state sync failed');
      this.#needFull = true;
    } finally {
      this.#syncing = false;
    }
  }

  async #syncOnce(): Promise<void> {
    const hostId = this.hostId;
    if (hostId === undefined) return;
    const set = await loadDesiredSet(this.ctx.deps.db, hostId);
    if (!set || this.#closed) return;
    await this.#completeUnseen(hostId, set.deleting);
    const next = new Map(set.devices.map((d) => [d.deviceId, fingerprint(d)]));
    const upserts = set.devices.filter((d) => this.#sent.get(d.deviceId) !== next.get(d.deviceId));
    const removes = [...this.#sent.keys()].filter((id) => !next.has(id));
    let message: agentv1.ControlMessage | undefined;
    // The agent applies a delta only if its revision is above the last one it applied, so one
    // change rides a delta and several (or an unchanged revision) ride a full set.
    if (!this.#needFull && upserts.length + removes.length === 0) return;
    if (!this.#needFull && upserts.length + removes.length === 1 && set.revision > this.#sentRevision) {
      const [device] = upserts;
      message = device
        ? create(agentv1.ControlMessageSchema, {
            body: { case: 'deviceUpsert', value: { revision: set.revision, device } },
          })
        : create(agentv1.ControlMessageSchema, {
            body: { case: 'deviceRemove', value: { revision: set.revision, deviceId: removes[0] ?? '' } },
          });
    } else {
      message = create(agentv1.ControlMessageSchema, {
        body: { case: 'desiredDevices', value: { revision: set.revision, devices: set.devices } },
      });
    }
    if (!this.send(message)) return;
    for (const id of next.keys()) this.#told.add(id);
    this.#sent = next;
    this.#sentRevision = set.revision;
    this.#needFull = false;
    this.#log.debug(
      { revision: set.revision, kind: message.body.case, upserts: upserts.length, removes: removes.length },
      'desired state sent',
    );
  }

  /** Deletions of devices this stream never told the agent of complete at once (see #told). */
  async #completeUnseen(hostId: string, deleting: readonly string[]): Promise<void> {
    const { db, planner } = this.ctx.deps;
    const unseen = deleting.filter((id) => !this.#told.has(id));
    if (unseen.length === 0) return;
    const observed = await completeUnseenDeletions(db, hostId, unseen, this.#now());
    this.#logChanges(observed.changes);
    planner.settle(observed.applied);
  }
}
