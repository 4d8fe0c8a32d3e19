// Stream tokens signed and checked the way the control plane and the agent do (@cphone/proto's
// Ed25519 JWTs), with a key made for the test.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import {
  rawPublicKey,
  type StreamSigningKey,
  type StreamTokenClaims,
  StreamTokenError,
  signStreamToken,
  verifyStreamToken,
} from '@cphone/proto';

export interface TestTokens {
  readonly hostId: string;
  /** A token for `deviceId` (a fresh session id, 1 h of life, unless given). */
  sign(claims: Partial<StreamTokenClaims> & { deviceId: string }): Promise<string>;
  /** The check an sfu is given: the signature, the expiry and this host. */
  verify(token: string): Promise<StreamTokenClaims>;
}

/** `now` (ms) is the clock tokens are checked against (default Date.now), so tests can let them expire. */
export function testTokens({
  hostId = 'host-test',
  now = Date.now,
}: {
  hostId?: string;
  now?: () => number;
} = {}): TestTokens {
  const { privateKey } = generateKeyPairSync('ed25519');
  const key: StreamSigningKey = { keyId: 'test-key', privateKey, publicKey: rawPublicKey(privateKey) };
  return {
    hostId,
    sign: (claims) =>
      signStreamToken(key, {
        sessionId: randomUUID(),
        hostId,
        tenantId: 'tenant-test',
        rights: 'view',
        expiresAt: Math.floor(now() / 1000) + 3600,
        issuedAt: now() / 1000,
        ...claims,
      }),
    verify: async (token) => {
      const claims = await verifyStreamToken(token, [key], { now: now() });
      if (claims.hostId !== hostId) throw new StreamTokenError('the stream token is for another host');
      return claims;
    },
  };
}
