// The agent gateway: a grpc-js server over TLS with one live AgentService.Connect stream per host,
// the liveness monitor and the batched heartbeat writer. It keeps no state the store does not also
// hold: desired state is re-read on every change and on every connect (level-triggered).
import { addGrpcService, agentv1 } from '@cphone/proto';
import * as grpc from '@grpc/grpc-js';
import { type Cluster, newReplicaId } from '../cluster/cluster.js';
import { UnavailableError } from '../errors.js';
import { HeartbeatWriter } from '../hosts/heartbeats.js';
import { LivenessMonitor } from '../hosts/liveness.js';
import { releaseStreams } from '../store/hosts.js';
import { CommandRelay, type GatewayMessage } from './relay.js';
import { type AgentCall, AgentSession, type SessionContext } from './session.js';
import { type CancelSpread, spreadOver } from './spread.js';
import { closeCall } from './stream-status.js';
import { type GatewayTls, loadGatewayTls } from './tls.js';
import { ReloadingTls, reloadingServerCredentials } from './tls-reload.js';
import type { AgentGateway, CommandKind, GatewayDeps } from './types.js';

export interface AgentGatewayOptions {
  /** TLS material; loaded from the config (or generated in dataDir) when absent. */
  tls?: GatewayTls;
  /** A stream must send Hello within this long (default 5000 ms). */
  helloTimeoutMs?: number;
  /** A Hello must be accepted (Welcome sent) within this long of arriving (default 30000 ms). */
  helloHandlingTimeoutMs?: number;
  /** Outbound messages a stream may buffer before it is cut off (default 1000). */
  maxQueuedMessages?: number;
  /** Liveness check period (default a third of the heartbeat TTL). */
  monitorIntervalMs?: number;
  /** Heartbeat write-back period (default min(1000, TTL / 3) ms). */
  heartbeatFlushMs?: number;
  /** Names this replica in Welcome and logs (default: the cluster's id, else hostname-pid-random). */
  replicaId?: string;
  /**
   * The other replicas: commands, desired-state nudges, drains and disconnects for hosts whose
   * stream is elsewhere go through it, and only its leader runs the liveness jobs. Without one this
   * replica is alone (it leads and holds every stream).
   */
  cluster?: Cluster<GatewayMessage>;
}

/** The gateway as the server holds it: the AgentGateway contract plus lifecycle helpers. */
export interface StartedAgentGateway extends AgentGateway {
  /** Runs one liveness pass now (flush heartbeats, unreachable, lost). */
  checkLiveness(): Promise<void>;
  /**
   * Reads the operator's TLS files again (CPHONE_TLS_CERT/KEY/CA); true when a changed, valid
   * certificate or CA bundle was taken for new handshakes. Connected agents keep their streams.
   * False (nothing to reload) with generated or given material.
   */
  reloadTls(): Promise<boolean>;
}

// Sane for 10,000 long-lived streams: application heartbeats carry liveness, so transport pings
// are rare and only find dead TCP connections the agent cannot report.
const SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.keepalive_time_ms': 120_000,
  'grpc.keepalive_timeout_ms': 20_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.max_receive_message_length': 16 * 1024 * 1024,
};

/** Starts the gateway on config.grpcHost:grpcPort (0 picks a free port; see `.port`). */
export async function startAgentGateway(
  deps: GatewayDeps,
  options: AgentGatewayOptions = {},
): Promise<StartedAgentGateway> {
  const { config } = deps;
  const logger = deps.logger.child({ module: 'gateway' });
  const tls = options.tls ?? (await loadGatewayTls(config));
  const sessions = new Map<string, AgentSession>();
  const streams = new Set<AgentSession>();
  const startedAt = deps.clock.now();
  const cluster = options.cluster;
  const replicaId = options.replicaId ?? cluster?.replicaId ?? newReplicaId();
  const relay = cluster && new CommandRelay(cluster, deps.db, logger, () => deps.clock.now());
  // Writes that say a stream here ended; close() waits for them before the database goes.
  const releases = new Set<Promise<void>>();
  let closing = false;

  const tell = (message: GatewayMessage, to?: string) => {
    cluster?.publish(to, message).catch((err: unknown) => {
      logger.warn({ err, kind: message.kind }, 'telling the other replicas failed');
    });
  };
  // The host rows that name this replica as their stream's holder (one host's, or all of them);
  // a row a newer stream elsewhere took over names that replica and is left alone.
  const releaseHosts = (hostId?: string) =>
    releaseStreams(deps.db, replicaId, hostId).then(
      () => undefined,
      (err: unknown) => logger.warn({ err, hostId }, 'releasing the host stream record failed'),
    );
  const release = (hostId: string) => {
    const write = releaseHosts(hostId).finally(() => releases.delete(write));
    releases.add(write);
  };

  const heartbeats = new HeartbeatWriter(
    deps.db,
    logger,
    options.heartbeatFlushMs ?? Math.min(1000, Math.floor(config.heartbeatTtlMs / 3)),
  );
  const context: SessionContext = {
    deps,
    logger,
    heartbeats,
    replicaId,
    maxQueuedMessages: options.maxQueuedMessages ?? 1000,
    helloTimeoutMs: options.helloTimeoutMs ?? 5000,
    helloHandlingTimeoutMs: options.helloHandlingTimeoutMs ?? 30_000,
    register(session) {
      const hostId = session.hostId;
      if (hostId === undefined) return;
      const previous = sessions.get(hostId);
      sessions.set(hostId, session);
      // After the set(), so the old session's unregister leaves the new one in place.
      previous?.close(grpc.status.ABORTED, 'superseded by a newer stream for this host');
      deps.metrics.agentStreams.set(sessions.size);
    },
    unregister(session) {
      streams.delete(session);
      if (session.hostId !== undefined && sessions.get(session.hostId) === session) {
        sessions.delete(session.hostId);
        deps.metrics.agentStreams.set(sessions.size);
        // On shutdown one statement releases every host at the end of close().
        if (!closing) release(session.hostId);
      }
    },
    accepted(hostId, heldBy) {
      if (heldBy !== null && heldBy !== replicaId) tell({ kind: 'superseded', hostId }, heldBy);
    },
  };

  cluster?.onMessage(({ from, message }) => {
    switch (message.kind) {
      case 'desired':
        sessions.get(message.hostId)?.desiredChanged();
        return;
      case 'drain':
        sessions
          .get(message.hostId)
          ?.drain(
            message.reason,
            message.deadlineMs === undefined ? undefined : new Date(message.deadlineMs),
          );
        return;
      case 'disconnect':
        sessions.get(message.hostId)?.close(grpc.status.UNAUTHENTICATED, message.reason);
        return;
      case 'streams':
        sessions.get(message.hostId)?.revokeStreams({
          ...(message.sessionId ? { sessionId: message.sessionId } : {}),
          ...(message.deviceId ? { deviceId: message.deviceId } : {}),
          ...(message.tenantId ? { tenantId: message.tenantId } : {}),
          reason: message.reason,
          message: message.message,
          ...(message.issuedBeforeMs !== undefined ? { issuedBefore: new Date(message.issuedBeforeMs) } : {}),
        });
        return;
      case 'superseded':
        sessions
          .get(message.hostId)
          ?.close(grpc.status.ABORTED, `superseded by a newer stream on replica ${from}`);
        return;
      case 'command':
        void relay?.serve(from, message, (deviceId, kind, deadline) => {
          const session = sessions.get(message.hostId);
          if (!session) {
            return Promise.reject(
              new UnavailableError(`host ${JSON.stringify(message.hostId)} is not connected`),
            );
          }
          return session.command(deviceId, kind, deadline);
        });
        return;
      case 'result':
        relay?.receive(message);
        return;
      case 'auth':
      case 'rate-limits':
        return;
    }
  });
  // Nudges sent while this replica was cut off from the database are lost: resend every set.
  cluster?.onResync(() => {
    for (const session of sessions.values()) session.desiredChanged();
  });

  const server = new grpc.Server(SERVER_OPTIONS);
  addGrpcService(server, agentv1.AgentService, {
    connect(call: AgentCall) {
      if (closing) {
        closeCall(call, grpc.status.UNAVAILABLE, 'control plane shutting down');
        return;
      }
      const session = new AgentSession(call, context);
      streams.add(session);
      session.start();
    },
  });
  // The operator's files are watched (every CPHONE_TLS_RELOAD_INTERVAL_MS, and on reloadTls()):
  // a rotated certificate serves new handshakes while the streams already up stay as they are.
  const reloading =
    !options.tls && config.tlsCertFile && config.tlsKeyFile
      ? new ReloadingTls(
          { certFile: config.tlsCertFile, keyFile: config.tlsKeyFile, caFile: config.tlsCaFile },
          tls,
          logger,
          config.tlsReloadIntervalMs,
        )
      : undefined;
  const credentials = reloading
    ? reloadingServerCredentials(reloading)
    : grpc.ServerCredentials.createSsl(null, [
        { cert_chain: Buffer.from(tls.cert), private_key: Buffer.from(tls.key) },
      ]);
  const address = config.grpcHost.includes(':') ? `[${config.grpcHost}]` : config.grpcHost;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${address}:${config.grpcPort}`, credentials, (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );

  const monitorIntervalMs = options.monitorIntervalMs ?? Math.max(50, Math.floor(config.heartbeatTtlMs / 3));
  let cancelPings: CancelSpread = () => {};
  const monitor = new LivenessMonitor(deps, logger, {
    intervalMs: monitorIntervalMs,
    // The liveness jobs run on the leader only; its TTL counts from when it took over at the earliest.
    leadingSince: () => (cluster ? cluster.leaderSince : startedAt),
    replicaId,
    ...(cluster ? { replicaAlive: (id: string) => cluster.isAlive(id) } : {}),
    async beforeTick() {
      await heartbeats.flush();
      const now = deps.clock.now().getTime();
      const live: AgentSession[] = [];
      for (const session of sessions.values()) {
        if (now - session.lastSeenMs > config.heartbeatTtlMs) {
          session.close(
            grpc.status.UNAVAILABLE,
            `nothing received within the heartbeat TTL (${config.heartbeatTtlMs} ms)`,
          );
        } else {
          live.push(session);
        }
      }
      // Agents reconnect after a TTL without hearing from the control plane; a ping every third of
      // it keeps idle streams up. The pings go out in slices over half a pass (spread.ts), so a
      // large fleet's pings never hold the event loop in one piece; a stream that closed in the
      // meantime is skipped (ping() sends nothing on a closed stream).
      cancelPings();
      cancelPings = spreadOver(live, monitorIntervalMs / 2, (session) => session.ping());
    },
    onUnreachable(hostIds) {
      for (const id of hostIds) sessions.get(id)?.close(grpc.status.UNAVAILABLE, 'host marked unreachable');
    },
  });
  logger.info({ port, host: config.grpcHost, replicaId: context.replicaId }, 'agent gateway listening');

  return {
    port,
    get caPem() {
      return reloading ? reloading.current.caPem : tls.caPem;
    },
    reloadTls() {
      return reloading ? reloading.reload() : Promise.resolve(false);
    },
    desiredChanged(hostId) {
      const session = sessions.get(hostId);
      if (session) session.desiredChanged();
      else tell({ kind: 'desired', hostId });
    },
    command(
      hostId: string,
      deviceId: string,
      kind: CommandKind,
      deadline: Date,
    ): Promise<agentv1.CommandResult> {
      const session = sessions.get(hostId);
      if (session) return session.command(deviceId, kind, deadline);
      if (relay && !closing) return relay.send(hostId, deviceId, kind, deadline);
      deps.metrics.commands.inc({ kind: kind.case, outcome: 'unavailable' });
      return Promise.reject(new UnavailableError(`host ${JSON.stringify(hostId)} is not connected`));
    },
    drain(hostId, reason, deadline) {
      const session = sessions.get(hostId);
      if (session) return session.drain(reason, deadline);
      tell({ kind: 'drain', hostId, reason, deadlineMs: deadline?.getTime() });
      return false;
    },
    disconnect(hostId, reason) {
      const session = sessions.get(hostId);
      session?.close(grpc.status.UNAUTHENTICATED, reason);
      // A stream on another replica (or a stale one there) is cut off as well.
      tell({ kind: 'disconnect', hostId, reason });
      return session !== undefined;
    },
    connectedHosts() {
      return [...sessions.keys()];
    },
    revokeStreams(hostId, revocation) {
      const session = sessions.get(hostId);
      if (session) {
        session.revokeStreams(revocation);
        return;
      }
      tell({
        kind: 'streams',
        hostId,
        sessionId: revocation.sessionId,
        deviceId: revocation.deviceId,
        tenantId: revocation.tenantId,
        reason: revocation.reason,
        message: revocation.message,
        issuedBeforeMs: revocation.issuedBefore?.getTime(),
      });
    },
    streamKeysChanged() {
      for (const session of sessions.values()) session.sendStreamKeys();
    },
    checkLiveness() {
      return monitor.tick();
    },
    async close() {
      if (closing) return;
      closing = true;
      reloading?.close();
      await monitor.close();
      cancelPings();
      // Agents reconnect (to another replica behind the load balancer, or to this one restarted).
      for (const session of [...streams])
        session.close(grpc.status.UNAVAILABLE, 'control plane shutting down');
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      relay?.rejectAll('control plane replica shutting down');
      await heartbeats.close();
      await Promise.all([...releases]);
      await releaseHosts();
      logger.info('agent gateway closed');
    },
  };
}
