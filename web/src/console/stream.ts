// What a <cphone-player> in the console plays: a stream session created through the API for the
// signed-in user, asked again whenever the player needs a fresh token (first connect, expiry).
import { StreamRights, type StreamSession } from '@cphone/proto/api';
import { api } from './api.js';

export interface PlayerSession {
  sfuUrl: string;
  token: string;
  sessionId: string;
  iceServers: RTCIceServer[];
}

export function playerSession(session: StreamSession | undefined): PlayerSession {
  if (!session) throw new Error('CreateStreamSession answered without a session');
  return {
    sfuUrl: session.sfuUrl,
    token: session.token,
    sessionId: session.sessionId,
    iceServers: session.iceServers.map((s) => ({
      urls: s.urls,
      ...(s.username ? { username: s.username, credential: s.credential } : {}),
    })),
  };
}

const providers = new Map<string, () => Promise<PlayerSession>>();

/**
 * A token provider for the player: a new CONTROL (or VIEW) session of the device each time it is
 * called. One function per device and rights, so a page that renders again hands the element the
 * same provider.
 */
export function sessionProvider(
  deviceId: string,
  rights = StreamRights.CONTROL,
): () => Promise<PlayerSession> {
  const key = `${deviceId}/${rights}`;
  let provider = providers.get(key);
  if (!provider) {
    provider = async () =>
      playerSession((await api.devices.createStreamSession({ deviceId, rights })).streamSession);
    providers.set(key, provider);
  }
  return provider;
}
