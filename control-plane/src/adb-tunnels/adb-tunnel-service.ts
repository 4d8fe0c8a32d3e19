// ADB tunnels: remote debugging of a phone through its host agent. The control plane checks who may
// drive the device, records the grant and signs a short-lived token (the stream keys, the ADB tunnel
// audience) naming tunnel, device, host, tenant and actor; the client then opens a WebSocket to the
// agent's tunnel endpoint, which checks the token locally and carries adb's bytes to the phone's
// adbd. Device stops and deletions and tenant suspensions reach the agent as the stream revocations
// they already send, which end tunnel connections too. The agent reports each connection's open and
// end; those reports become audit rows.
import { create } from '@bufbuild/protobuf';
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { HandlerContext } from '@connectrpc/connect';
import { AdbTunnelSchema, agentv1, type CreateAdbTunnelRequest, signAdbTunnelToken } from '@cphone/proto';
import { principalOf } from '../api/context.js';
import type { Deps } from '../deps.js';
import { loadDevice } from '../devices/lifecycle.js';
import { PermissionDeniedError } from '../errors.js';
import { newId } from '../ids.js';
import { findHostAdbTunnel, insertAdbTunnel } from '../store/adb-tunnels.js';
import type { StreamKeys } from '../streams/keys.js';
import { mayDrive, runningDeviceHost, tokenTtlSeconds } from '../streams/stream-service.js';

export interface AdbTunnelDeps extends Pick<Deps, 'db' | 'clock'> {
  readonly streams: { readonly keys: StreamKeys };
}

/** The agent's tunnel endpoint: the path `adb` beside its stream endpoint's `signal`. */
export function adbTunnelUrl(streamEndpoint: string): string {
  return new URL('adb', streamEndpoint).href;
}

export async function createAdbTunnel(
  deps: AdbTunnelDeps,
  req: CreateAdbTunnelRequest,
  context: HandlerContext,
) {
  const principal = principalOf(context);
  const ttl = tokenTtlSeconds(req.ttlSeconds);
  const device = await loadDevice(deps.db, principal.visibleTenants, req.deviceId);
  if (!mayDrive(principal, device.tenant_id)) {
    throw new PermissionDeniedError(
      `device_id: debugging device ${JSON.stringify(device.id)} needs a key of its own tenant, or role ops or platform_admin`,
    );
  }
  const host = await runningDeviceHost(deps.db, device);
  const now = deps.clock.now();
  const expireTime = new Date(now.getTime() + ttl * 1000);
  const tunnelId = newId('adbt');
  await insertAdbTunnel(deps.db, {
    id: tunnelId,
    tenant_id: device.tenant_id,
    device_id: device.id,
    host_id: host.id,
    actor: principal.actor,
    create_time: now,
    expire_time: expireTime,
  });
  const token = await signAdbTunnelToken(deps.streams.keys.current.signer, {
    tunnelId,
    deviceId: device.id,
    hostId: host.id,
    tenantId: device.tenant_id,
    actor: principal.actor,
    expiresAt: Math.floor(expireTime.getTime() / 1000),
    issuedAt: now.getTime() / 1000,
  });
  return {
    adbTunnel: create(AdbTunnelSchema, {
      tunnelId,
      deviceId: device.id,
      hostId: host.id,
      token,
      url: adbTunnelUrl(host.stream_endpoint),
      expireTime: timestampFromDate(expireTime),
    }),
  };
}

/**
 * Audits one report of a host about a connection through a tunnel issued for it; a report naming
 * another host's tunnel (or none) is ignored. Who and which tenant come from the grant's row, not
 * from the report.
 */
export async function applyAdbTunnelReport(
  deps: Pick<Deps, 'db' | 'audit'>,
  hostId: string,
  report: agentv1.AdbTunnelReport,
  now: Date,
): Promise<boolean> {
  const opened = report.event === agentv1.AdbTunnelReport_Event.OPENED;
  if (!opened && report.event !== agentv1.AdbTunnelReport_Event.ENDED) return false;
  const tunnel = await findHostAdbTunnel(deps.db, hostId, report.tunnelId);
  if (!tunnel) return false;
  const at = report.time ? timestampDate(report.time) : now;
  const detail = opened
    ? { client_address: report.clientAddress }
    : {
        duration_ms: Number(report.durationMs),
        bytes_to_device: Number(report.bytesToDevice),
        bytes_from_device: Number(report.bytesFromDevice),
        end_reason: report.endReason,
      };
  await deps.audit.record({
    tenant_id: tunnel.tenant_id,
    actor_tenant_id: tunnel.tenant_id,
    actor: tunnel.actor,
    actor_kind: tunnel.actor.startsWith('usr_') ? 'user' : 'api_key',
    role: '',
    method: opened ? 'AdbTunnel/Connected' : 'AdbTunnel/Disconnected',
    resource: `tunnel_id=${tunnel.id} device_id=${tunnel.device_id}`,
    resource_type: 'device',
    resource_id: tunnel.device_id,
    remote_address: opened ? report.clientAddress.slice(0, 64) : '',
    outcome: 'ok',
    detail: JSON.stringify({ host_id: hostId, connection_id: report.connectionId, ...detail }),
    create_time: at,
  });
  return true;
}
