// Stream sessions: a grant to watch (VIEW) or drive (CONTROL) one device through the sfu on its host.
// The control plane checks who may, signs a short-lived token naming device, host, tenant, rights
// and session, and hands out the host's signaling URL and ICE servers; the viewer then talks to the
// host directly and the host checks the token locally. Ending a session (here, or by stopping or
// deleting the device, or suspending the tenant) reaches the host over its agent stream.
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { HandlerContext } from '@connectrpc/connect';
import {
  type CreateStreamSessionRequest,
  type ListStreamSessionsRequest,
  type RevokeStreamSessionRequest,
  StreamRights,
  type StreamRightsName,
  type StreamSessionRecord,
  StreamSessionRecordSchema,
  StreamSessionSchema,
  StreamSessionState,
  signStreamToken,
} from '@cphone/proto';
import { principalOf } from '../api/context.js';
import { compact, ts } from '../api/convert.js';
import { pageOf, readPage } from '../api/pagination.js';
import { isOperator, type Principal } from '../auth/principal.js';
import type { Deps } from '../deps.js';
import { loadDevice } from '../devices/lifecycle.js';
import {
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
} from '../errors.js';
import { newId } from '../ids.js';
import { findHost } from '../store/hosts.js';
import {
  endStreamSessions,
  findStreamSession,
  insertStreamSession,
  type StreamSessionRow,
} from '../store/streams.js';
import type { IceConfig } from './ice.js';
import { iceServers } from './ice.js';
import type { StreamKeys } from './keys.js';

export interface StreamDeps extends Pick<Deps, 'db' | 'clock' | 'logger' | 'gateway'> {
  readonly streams: { readonly keys: StreamKeys; readonly ice: IceConfig };
}

const MIN_TTL_S = 30;
const MAX_TTL_S = 86_400;
const DEFAULT_TTL_S = 600;

function rightsOf(value: StreamRights): StreamRightsName {
  if (value === StreamRights.UNSPECIFIED || value === StreamRights.VIEW) return 'view';
  if (value === StreamRights.CONTROL) return 'control';
  throw new InvalidArgumentError('rights', value, 'is not a StreamRights');
}

/**
 * Who may drive a device: callers of its own tenant (any role), and operators (support). A
 * reseller may watch its customers' phones but not drive them.
 */
export function mayDrive(principal: Principal, tenantId: string): boolean {
  return principal.tenantId === tenantId || isOperator(principal);
}

/** A token lifetime asked for (ttl_seconds, 0 for the default), checked against the bounds. */
export function tokenTtlSeconds(asked: number): number {
  const ttl = asked || DEFAULT_TTL_S;
  if (!Number.isInteger(ttl) || ttl < MIN_TTL_S || ttl > MAX_TTL_S) {
    throw new InvalidArgumentError('ttl_seconds', asked, `must be in ${MIN_TTL_S}..${MAX_TTL_S}`);
  }
  return ttl;
}

/**
 * The host of a device that must be running, with the public endpoint its agent serves streams and
 * ADB tunnels on; FAILED_PRECONDITION naming the device's state (or the host's lack of an endpoint).
 */
export async function runningDeviceHost(
  db: StreamDeps['db'],
  device: { id: string; state: string; host_id: string | null },
): Promise<{ id: string; stream_endpoint: string }> {
  if (device.state !== 'running' || !device.host_id) {
    throw new FailedPreconditionError(
      `device ${JSON.stringify(device.id)} is ${device.state}: it must be running`,
    );
  }
  const host = await findHost(db, device.host_id);
  if (!host?.stream_endpoint) {
    throw new FailedPreconditionError(
      `device ${JSON.stringify(device.id)}: its host ${JSON.stringify(device.host_id)} serves no streams or tunnels (its agent runs with CPHONE_STREAM=off)`,
    );
  }
  return host;
}

export async function createStreamSession(
  deps: StreamDeps,
  req: CreateStreamSessionRequest,
  context: HandlerContext,
) {
  const principal = principalOf(context);
  const rights = rightsOf(req.rights);
  const ttl = tokenTtlSeconds(req.ttlSeconds);
  const device = await loadDevice(deps.db, principal.visibleTenants, req.deviceId);
  if (rights === 'control' && !mayDrive(principal, device.tenant_id)) {
    throw new PermissionDeniedError(
      `rights: driving device ${JSON.stringify(device.id)} needs a key of its own tenant, or role ops or platform_admin`,
    );
  }
  const host = await runningDeviceHost(deps.db, device);
  const now = deps.clock.now();
  const expireTime = new Date(now.getTime() + ttl * 1000);
  const sessionId = newId('strm');
  await insertStreamSession(deps.db, {
    id: sessionId,
    tenant_id: device.tenant_id,
    device_id: device.id,
    host_id: host.id,
    rights,
    actor: principal.actor,
    create_time: now,
    expire_time: expireTime,
    update_time: now,
  });
  const token = await signStreamToken(deps.streams.keys.current.signer, {
    sessionId,
    deviceId: device.id,
    hostId: host.id,
    tenantId: device.tenant_id,
    rights,
    expiresAt: Math.floor(expireTime.getTime() / 1000),
    issuedAt: now.getTime() / 1000,
  });
  return {
    streamSession: create(StreamSessionSchema, {
      sessionId,
      deviceId: device.id,
      hostId: host.id,
      rights: rights === 'control' ? StreamRights.CONTROL : StreamRights.VIEW,
      token,
      sfuUrl: host.stream_endpoint,
      expireTime: timestampFromDate(expireTime),
      iceServers: iceServers(deps.streams.ice, sessionId, now),
    }),
  };
}

export async function revokeStreamSession(
  deps: StreamDeps,
  req: RevokeStreamSessionRequest,
  context: HandlerContext,
) {
  const principal = principalOf(context);
  if (req.reason.length > 200)
    throw new InvalidArgumentError('reason', req.reason, 'must be at most 200 characters');
  const found = await findStreamSession(deps.db, principal.visibleTenants, req.sessionId);
  if (!found) throw new NotFoundError('stream session', req.sessionId);
  const now = deps.clock.now();
  const [ended] = await endStreamSessions(deps.db, { sessionId: found.id }, 'REVOKED', now);
  if (ended) {
    tellHost(deps, ended.host_id, {
      sessionId: ended.id,
      reason: 'REVOKED',
      message: req.reason || 'the stream session was revoked',
    });
  }
  const row = (await findStreamSession(deps.db, principal.visibleTenants, found.id)) ?? found;
  return { streamSession: recordToProto(row) };
}

export async function listStreamSessions(
  deps: StreamDeps,
  req: ListStreamSessionsRequest,
  context: HandlerContext,
) {
  const principal = principalOf(context);
  const device = await loadDevice(deps.db, principal.visibleTenants, req.deviceId);
  const page = readPage(req.pageSize, req.pageToken, { deviceId: device.id, active: req.activeOnly });
  let query = deps.db
    .selectFrom('stream_session')
    .selectAll()
    .where('device_id', '=', device.id)
    .where('tenant_id', '=', device.tenant_id)
    .orderBy('id', 'desc')
    .limit(page.limit);
  if (req.activeOnly) query = query.where('state', '!=', 'ended');
  if (page.after) query = query.where('id', '<', page.after);
  const { items, nextPageToken } = pageOf(await query.execute(), page, (r) => r.id);
  return { streamSessions: items.map(recordToProto), nextPageToken };
}

export interface StreamRevocationInit {
  sessionId?: string;
  deviceId?: string;
  tenantId?: string;
  reason: string;
  message: string;
  issuedBefore?: Date;
}

/** Tells a host's agent to end sessions now (after the change committed); never throws. */
export function tellHost(
  deps: { gateway: Pick<StreamDeps['gateway'], 'revokeStreams'>; logger: StreamDeps['logger'] },
  hostId: string,
  revocation: StreamRevocationInit,
): void {
  try {
    deps.gateway.revokeStreams(hostId, revocation);
  } catch (err) {
    deps.logger.warn({ err, hostId }, 'could not tell the host to end stream sessions');
  }
}

/**
 * Ends the open sessions of a device (stopped or deleted) and tells its host at once: tokens issued
 * before now no longer admit a join.
 */
export async function endDeviceStreams(
  deps: {
    db: StreamDeps['db'];
    gateway: Pick<StreamDeps['gateway'], 'revokeStreams'>;
    logger: StreamDeps['logger'];
  },
  device: { id: string; host_id: string | null },
  reason: 'DEVICE_STOPPED' | 'DEVICE_DELETED',
  now: Date,
): Promise<void> {
  await endStreamSessions(deps.db, { deviceId: device.id }, reason, now);
  if (!device.host_id) return;
  tellHost(deps, device.host_id, {
    deviceId: device.id,
    reason,
    message: reason === 'DEVICE_STOPPED' ? 'the phone was stopped' : 'the phone was deleted',
    issuedBefore: now,
  });
}

const STATE: Record<StreamSessionRow['state'], StreamSessionState> = {
  issued: StreamSessionState.ISSUED,
  active: StreamSessionState.ACTIVE,
  ended: StreamSessionState.ENDED,
};

export function recordToProto(row: StreamSessionRow): StreamSessionRecord {
  const s = row.stats;
  return create(
    StreamSessionRecordSchema,
    compact({
      sessionId: row.id,
      deviceId: row.device_id,
      tenantId: row.tenant_id,
      hostId: row.host_id,
      rights: row.rights === 'control' ? StreamRights.CONTROL : StreamRights.VIEW,
      actor: row.actor,
      state: STATE[row.state],
      createTime: ts(row.create_time),
      expireTime: ts(row.expire_time),
      startTime: ts(row.start_time),
      endTime: ts(row.end_time),
      endReason: row.end_reason,
      viewerSeconds: BigInt(row.viewer_seconds),
      stats: {
        fps: s.fps ?? 0,
        bitrateBps: BigInt(Math.round(s.bitrateBps ?? 0)),
        packetLoss: s.packetLoss ?? 0,
        rttMs: s.rttMs ?? 0,
        jitterBufferMs: s.jitterBufferMs ?? 0,
        glassToGlassP50Ms: s.glassToGlassP50Ms ?? 0,
        glassToGlassP95Ms: s.glassToGlassP95Ms ?? 0,
        framesDecoded: BigInt(Math.round(s.framesDecoded ?? 0)),
        firstFrameMs: s.firstFrameMs ?? 0,
      },
    }),
  );
}
