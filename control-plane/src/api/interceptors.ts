import { Code, type Interceptor } from '@connectrpc/connect';
import type { Kysely } from 'kysely';
import { authenticate } from '../auth/api-keys.js';
import type { Clock } from '../clock.js';
import { isInternal, toConnectError } from '../error-codes.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Database } from '../store/schema.js';
import { principalKey } from './context.js';

const READ_ONLY = /^(Get|List|Explain|Query|Export)/;

/** The request fields that name resources, recorded in the audit row. */
function resourceOf(message: unknown): string {
  if (!message || typeof message !== 'object') return '';
  const ids: string[] = [];
  for (const [key, value] of Object.entries(message)) {
    if (/(Id|Name)$/.test(key) && typeof value === 'string' && value) ids.push(`${key}=${value}`);
  }
  return ids.join(' ');
}

/**
 * Every API call: authenticate the bearer key, run the handler, map its error, record metrics, and
 * write an audit row for every mutating call (whatever its outcome).
 */
export function apiInterceptor(deps: {
  db: Kysely<Database>;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
}): Interceptor {
  const log = deps.logger.child({ module: 'api' });
  return (next) => async (req) => {
    const started = performance.now();
    const procedure = `${req.service.name}/${req.method.name}`;
    let code = 'ok';
    let principal: Awaited<ReturnType<typeof authenticate>> | undefined;
    try {
      const header = req.header.get('authorization') ?? '';
      principal = await authenticate(deps.db, header.replace(/^Bearer\s+/i, '') || undefined, {
        now: deps.clock.now(),
        logger: log,
      });
      req.contextValues.set(principalKey, principal);
      return await next(req);
    } catch (error) {
      const mapped = toConnectError(error);
      code = Code[mapped.code] ?? String(mapped.code);
      if (isInternal(error)) log.error({ err: error, procedure }, 'handler failed');
      throw mapped;
    } finally {
      deps.metrics.rpcDuration.observe({ procedure, code }, (performance.now() - started) / 1000);
      if (principal && !READ_ONLY.test(req.method.name)) {
        await deps.db
          .insertInto('audit_log')
          .values({
            tenant_id: principal.tenantId,
            actor: principal.keyId,
            role: principal.role,
            method: procedure,
            resource: req.stream ? '' : resourceOf(req.message),
            outcome: code,
            detail: JSON.stringify({}),
          })
          .execute()
          .catch((err: unknown) => log.error({ err, procedure }, 'audit write failed'));
      }
    }
  };
}
