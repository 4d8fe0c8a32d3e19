import { randomBytes } from 'node:crypto';
import type { DescMessage, Message } from '@bufbuild/protobuf';
import { Code, type ConnectError, type Interceptor } from '@connectrpc/connect';
import type { Kysely } from 'kysely';
import { outcomeOf } from '../audit/outcome.js';
import { auditResource } from '../audit/resources.js';
import type { AuthCache } from '../auth/auth-cache.js';
import { PLATFORM_TENANT_ID } from '../auth/bootstrap.js';
import type { Principal } from '../auth/principal.js';
import type { Clock } from '../clock.js';
import type { ControlPlaneConfig } from '../config.js';
import { isInternal, toConnectError } from '../error-codes.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Database } from '../store/schema.js';
import { sessionCookie } from '../users/sessions.js';
import type { AuditWriter } from './audit-writer.js';
import { type CallerDeps, callerOf, READ_ONLY } from './caller.js';
import { clientAddress, TrustedProxies } from './client-address.js';
import { principalKey } from './context.js';
import type { RateLimiter } from './rate-limit.js';
import { checkRequest } from './request-check.js';
import { isValidateOnly } from './validate-only.js';

/**
 * Bounds of what an audit row takes from a request: each named value, and the whole resource
 * column. The row records which resource a call named, not a copy of what the caller sent. The
 * other columns come from the server's own rows (tenant, key, role) and the schema (method,
 * outcome), so they are bounded by construction.
 */
const AUDIT_VALUE_CHARS = 128;
const AUDIT_RESOURCE_CHARS = 1024;
const AUDIT_MESSAGE_CHARS = 1024;

/** JSON of the value (control characters and lone surrogates escaped), cut to `max` characters. */
function auditText(value: string, max: number): string {
  const json = JSON.stringify(value).slice(1, -1);
  return json.length <= max ? json : `${json.slice(0, max)}…`;
}

/** The request fields that name resources, recorded in the audit row. */
function resourceOf(message: unknown): string {
  if (!message || typeof message !== 'object') return '';
  const ids: string[] = [];
  for (const [key, value] of Object.entries(message)) {
    // `$typeName` is protobuf-es bookkeeping, not a field of the request.
    if (!key.startsWith('$') && /(Id|Name)$/.test(key) && typeof value === 'string' && value) {
      ids.push(`${key}=${auditText(value, AUDIT_VALUE_CHARS)}`);
    }
  }
  const resource = ids.join(' ');
  return resource.length <= AUDIT_RESOURCE_CHARS ? resource : `${resource.slice(0, AUDIT_RESOURCE_CHARS)}…`;
}

/**
 * The key id an anonymous caller presented (`Bearer <key id>.<secret>`), never the secret, and only
 * when it looks like a key id: anything else a caller sends is not worth a row's column.
 */
function presentedKeyId(header: Headers): string {
  const bearer = (header.get('authorization') ?? '').replace(/^Bearer\s+/i, '');
  const keyId = bearer.slice(0, Math.max(0, bearer.indexOf('.')));
  return /^key_[a-z0-9]{1,40}$/.test(keyId) ? keyId : '';
}

/** What an anonymous caller brought, without its value. */
function credentialOf(header: Headers): string {
  if (header.get('authorization')) return presentedKeyId(header) ? 'api_key' : 'malformed';
  return sessionCookie(header.get('cookie')) ? 'session_cookie' : 'none';
}

/** A caller's own request id is kept when it is plain and short; otherwise the server makes one. */
const CALLER_REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** The id a call's answer and logs carry in `x-request-id`, so a person can quote it. */
function requestIdOf(header: Headers): string {
  const given = header.get('x-request-id');
  return given && CALLER_REQUEST_ID.test(given) ? given : `req_${randomBytes(9).toString('base64url')}`;
}

/** Refuses, before any handler, a request message that breaks the edge rules (request-check.ts). */
function checked(schema: DescMessage, message: Message): Message {
  const problem = checkRequest(schema, message);
  if (problem) throw problem;
  return message;
}

async function* checkedStream(schema: DescMessage, messages: AsyncIterable<Message>) {
  for await (const message of messages) yield checked(schema, message);
}

async function* mappedStream<T>(messages: AsyncIterable<T>, answerOf: (error: unknown) => Error) {
  try {
    yield* messages;
  } catch (error) {
    throw answerOf(error);
  }
}

/** What the audit log calls the principal's kind. */
function actorKindOf(principal: Principal): string {
  if (principal.keyId) return 'api_key';
  if (principal.user) return 'user';
  return '';
}

/**
 * Every API call: give it a request id (`x-request-id` on its answer, error or not, and in its logs),
 * authenticate the caller (caller.ts: Bearer key or session cookie), check the request against the
 * edge rules, run the handler, map its error, record metrics, and queue an audit row for every
 * mutating call (whatever its outcome) and for every call refused before its caller was known.
 */
export function apiInterceptor(deps: {
  db: Kysely<Database>;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  authCache?: AuthCache | undefined;
  audit: AuditWriter;
  config: CallerDeps['config'] & Pick<ControlPlaneConfig, 'trustedProxies'>;
  /** Token buckets per key and tenant (rate-limit.ts); absent, calls are not limited. */
  rateLimiter?: RateLimiter | undefined;
}): Interceptor {
  const log = deps.logger.child({ module: 'api' });
  const trusted = new TrustedProxies(deps.config.trustedProxies);
  return (next) => async (req) => {
    const started = performance.now();
    const procedure = `${req.service.name}/${req.method.name}`;
    let code = 'ok';
    let failure: ConnectError | undefined;
    let response: unknown;
    let principal: Principal | undefined;
    let limitHeaders: Readonly<Record<string, string>> = {};
    let limited = false;
    const requestId = requestIdOf(req.header);
    // The error the caller sees: mapped to its code, carrying the request id, logged if internal.
    const answerOf = (error: unknown) => {
      const mapped = toConnectError(error);
      code = Code[mapped.code] ?? String(mapped.code);
      failure = mapped;
      mapped.metadata.set('x-request-id', requestId);
      for (const [name, value] of Object.entries(limitHeaders)) mapped.metadata.set(name, value);
      if (isInternal(error)) log.error({ err: error, procedure, requestId }, 'handler failed');
      return mapped;
    };
    try {
      principal = await callerOf(deps, req, { now: deps.clock.now(), logger: log });
      req.contextValues.set(principalKey, principal);
      if (principal && deps.rateLimiter) {
        // In memory on the hot path; a promise only while a bucket is cold (rate-limit.ts).
        const admitted = deps.rateLimiter.admit(principal);
        const decision = admitted instanceof Promise ? await admitted : admitted;
        limitHeaders = decision.headers;
        if (decision.refusal) {
          limited = true;
          throw decision.refusal;
        }
      }
      if (!req.stream) checked(req.method.input, req.message);
      const res = req.stream
        ? await next({ ...req, message: checkedStream(req.method.input, req.message) })
        : await next(req);
      res.header.set('x-request-id', requestId);
      for (const [name, value] of Object.entries(limitHeaders)) res.header.set(name, value);
      if (!res.stream) response = res.message;
      // A streamed answer fails while it is read, after this call returned: map those errors too.
      return res.stream ? { ...res, message: mappedStream(res.message, answerOf) } : res;
    } catch (error) {
      throw answerOf(error);
    } finally {
      deps.metrics.rpcDuration.observe({ procedure, code }, (performance.now() - started) / 1000);
      // A public call that signed someone in set its principal (users/user-service.ts).
      principal ??= req.contextValues.get(principalKey);
      // A dry run (validate_only) changes nothing, so there is nothing to audit; a call refused
      // before its caller was known is an attempt worth a row, read or write.
      const audited = principal
        ? !READ_ONLY.test(req.method.name) && !isValidateOnly(req.message)
        : failure !== undefined;
      if (audited) {
        const full = recordCall(deps.audit, {
          procedure,
          principal,
          request: req.stream ? undefined : req.message,
          schema: req.stream ? undefined : req.method.input,
          response,
          failure,
          header: req.header,
          requestId,
          limited,
          remoteAddress: clientAddress(req.header, trusted),
          now: deps.clock.now(),
        });
        // Queued, not awaited: the row is written beside the response (audit-writer.ts).
        if (full) await full;
      }
    }
  };
}

/** Queues the audit row of one call; a promise only when the writer's queue is full. */
function recordCall(
  audit: AuditWriter,
  call: {
    procedure: string;
    principal: Principal | undefined;
    request: unknown;
    schema: DescMessage | undefined;
    response: unknown;
    failure: ConnectError | undefined;
    header: Headers;
    requestId: string;
    limited: boolean;
    remoteAddress: string;
    now: Date;
  },
): Promise<void> | undefined {
  const { principal, failure } = call;
  const resource = auditResource(call.procedure, call.schema, call.request, call.response);
  const anonymous = principal === undefined;
  const detail: Record<string, unknown> = { ...resource.detail };
  if (anonymous) detail.credential = credentialOf(call.header);
  const fallback = principal?.tenantId ?? PLATFORM_TENANT_ID;
  return audit.record(
    {
      tenant_id: fallback,
      actor_tenant_id: principal?.tenantId ?? '',
      actor: principal?.actor ?? presentedKeyId(call.header),
      actor_kind: principal ? actorKindOf(principal) : 'anonymous',
      role: principal?.role ?? '',
      method: call.procedure,
      resource: call.request === undefined ? '' : resourceOf(call.request),
      resource_type: resource.type,
      resource_id: auditText(resource.id, AUDIT_VALUE_CHARS),
      outcome: outcomeOf(failure?.code),
      message: failure ? auditText(failure.rawMessage, AUDIT_MESSAGE_CHARS) : '',
      request_id: call.requestId,
      idempotency_key: auditText(resource.idempotencyKey, AUDIT_VALUE_CHARS),
      remote_address: call.remoteAddress.slice(0, 64),
      detail: JSON.stringify(detail),
      create_time: call.now,
    },
    {
      target: { type: resource.type, id: resource.id, tenantHint: resource.tenantHint, fallback },
      // An anonymous flood and the limiter's refusals must not slow the callers that got through.
      droppable: anonymous || call.limited,
    },
  );
}
