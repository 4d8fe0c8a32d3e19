// The ICE servers a viewer's browser is given: STUN, and TURN with short-lived credentials in
// coturn's shared-secret scheme (its "REST API" auth, `use-auth-secret`): the user name is
// "<expiry in unix seconds>:<session id>" and the credential base64(HMAC-SHA1(secret, user name)),
// so coturn checks them with no call back to the control plane.
import { createHmac } from 'node:crypto';

export interface IceConfig {
  /** stun: URLs handed to every viewer. */
  readonly stunUrls: readonly string[];
  /** turn:/turns: URLs; used only with a secret. */
  readonly turnUrls: readonly string[];
  /** coturn's static-auth-secret; TURN is offered only when set. */
  readonly turnSecret: string | undefined;
  /** How long TURN credentials last, in seconds. */
  readonly turnTtlSeconds: number;
}

export interface IceServerInit {
  urls: string[];
  username: string;
  credential: string;
}

export function turnCredential(
  secret: string,
  sessionId: string,
  expiresAt: number,
): { username: string; credential: string } {
  const username = `${expiresAt}:${sessionId}`;
  return { username, credential: createHmac('sha1', secret).update(username).digest('base64') };
}

export function iceServers(config: IceConfig, sessionId: string, now: Date): IceServerInit[] {
  const out: IceServerInit[] = [];
  if (config.stunUrls.length > 0) out.push({ urls: [...config.stunUrls], username: '', credential: '' });
  if (config.turnSecret && config.turnUrls.length > 0) {
    const expiresAt = Math.floor(now.getTime() / 1000) + config.turnTtlSeconds;
    out.push({ urls: [...config.turnUrls], ...turnCredential(config.turnSecret, sessionId, expiresAt) });
  }
  return out;
}
