// What hosts report of their stream sessions (joined, measured, ended): recorded on the session for
// ops and metering (viewer-seconds), and in the audit trail (who watched which device, with what
// rights, for how long).
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { agentv1 } from '@cphone/proto';
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../store/schema.js';
import { markJoined, markLeft, recordStats, type StreamSessionRow } from '../store/streams.js';

function statsOf(report: agentv1.StreamSessionReport): Record<string, number> {
  return {
    fps: report.fps,
    bitrateBps: Number(report.bitrateBps),
    packetLoss: report.packetLoss,
    rttMs: report.rttMs,
    jitterBufferMs: report.jitterBufferMs,
    glassToGlassP50Ms: report.glassToGlassP50Ms,
    glassToGlassP95Ms: report.glassToGlassP95Ms,
    framesDecoded: Number(report.framesDecoded),
    firstFrameMs: report.firstFrameMs,
  };
}

async function audit(
  db: Kysely<Database> | Transaction<Database>,
  row: StreamSessionRow,
  method: string,
  detail: Record<string, unknown>,
) {
  await db
    .insertInto('audit_log')
    .values({
      tenant_id: row.tenant_id,
      actor_tenant_id: row.tenant_id,
      actor: row.actor,
      actor_kind: row.actor.startsWith('usr_') ? 'user' : 'api_key',
      role: '',
      method,
      resource: `session_id=${row.id} device_id=${row.device_id}`,
      resource_type: 'stream_session',
      resource_id: row.id,
      remote_address: typeof detail.viewer_address === 'string' ? detail.viewer_address.slice(0, 64) : '',
      outcome: 'ok',
      detail: JSON.stringify({ rights: row.rights, host_id: row.host_id, ...detail }),
    })
    .execute();
}

/**
 * Applies one report of a host about a session it serves; a report naming another host's session
 * (or none) is ignored: a host speaks for its own sfu only.
 */
export async function applyStreamReport(
  db: Kysely<Database>,
  hostId: string,
  report: agentv1.StreamSessionReport,
  now: Date,
): Promise<boolean> {
  const at = report.time ? timestampDate(report.time) : now;
  return db.transaction().execute(async (trx) => {
    const session = await trx
      .selectFrom('stream_session')
      .selectAll()
      .where('id', '=', report.sessionId)
      .where('host_id', '=', hostId)
      .forUpdate()
      .executeTakeFirst();
    if (!session) return false;
    switch (report.event) {
      case agentv1.StreamSessionReport_Event.JOINED: {
        const row = await markJoined(trx, session.id, at);
        if (row) await audit(trx, row, 'StreamSession/Joined', { viewer_address: report.viewerAddress });
        return true;
      }
      case agentv1.StreamSessionReport_Event.STATS:
        await recordStats(trx, session.id, statsOf(report), at);
        return true;
      case agentv1.StreamSessionReport_Event.ENDED: {
        const row = await markLeft(trx, session.id, {
          at,
          viewerSeconds: Number(report.viewerSeconds),
          reason: report.endReason || 'VIEWER_LEFT',
          stats: statsOf(report),
        });
        if (row) {
          await audit(trx, row, 'StreamSession/Ended', {
            seconds: Number(report.viewerSeconds),
            end_reason: row.end_reason,
          });
        }
        return true;
      }
      default:
        return false;
    }
  });
}
