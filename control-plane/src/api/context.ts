import { createContextKey, type HandlerContext } from '@connectrpc/connect';
import type { Principal } from '../auth/principal.js';
import { UnauthenticatedError } from '../errors.js';

/** Set by the auth interceptor on every authenticated call. */
export const principalKey = createContextKey<Principal | undefined>(undefined, { description: 'caller' });

/** The caller of an API handler; the auth interceptor guarantees one. */
export function principalOf(context: HandlerContext): Principal {
  const principal = context.values.get(principalKey);
  if (!principal) throw new UnauthenticatedError('no API key');
  return principal;
}
