// What an audited call touched: the resource's type and id, the tenant the request named, and a
// short detail without secrets. Read off the request (and, for a create, the response) by the
// naming rules the API keeps: a resource of type `device` is named by a `device_id` field, at the
// top of the request (StopDevice) or in the message of that name (UpdateDevice's `device`), and a
// create answers with the created message (`device`, `devices`, `tenant`, `api_key`, `host` …).
import type { DescMessage } from '@bufbuild/protobuf';

/** The resource type of each service's calls, unless METHOD_TYPES says otherwise. */
const SERVICE_TYPES: Readonly<Record<string, string>> = {
  DeviceService: 'device',
  HostService: 'host',
  TenantService: 'tenant',
  ApiKeyService: 'api_key',
  ImageService: 'image',
  UserService: 'user',
  ArtifactService: 'upload',
  WebhookService: 'webhook',
  BillingService: 'price_book',
  UsageService: 'usage',
};

const METHOD_TYPES: Readonly<Record<string, string>> = {
  'DeviceService/RevokeStreamSession': 'stream_session',
  'TenantService/SetQuota': 'tenant',
  'BillingService/RateUsage': 'tenant',
  'BillingService/CloseStatement': 'statement',
  'BillingService/GetStatement': 'statement',
  'BillingService/ListStatements': 'statement',
  'BillingService/ExportStatement': 'statement',
  'WebhookService/RedeliverWebhookEvent': 'webhook_event',
  'UserService/InviteUser': 'invitation',
  'UserService/RevokeInvitation': 'invitation',
  'UserService/AcceptInvitation': 'invitation',
  'UserService/RevokeSession': 'session',
  'UserService/SignOut': 'session',
  'UserService/SignIn': 'user',
  'UserService/ChangePassword': 'user',
};

/** Where a type's id sits when it is not `<type>_id` (RevokeStreamSession names `session_id`). */
const ID_FIELDS: Readonly<Record<string, string>> = { stream_session: 'sessionId', webhook_event: 'eventId' };

/** Messages that carry the resource's id under another name (SetQuota's `quota.tenant_id`). */
const NESTED: Readonly<Record<string, readonly string[]>> = { tenant: ['tenant', 'quota'] };

/**
 * Scalar request fields worth keeping in the detail. An allow-list, so a new field holding a secret
 * (a password, a credential, file content, a shell command) never lands in the audit log unseen.
 */
const DETAIL_FIELDS = new Set([
  'reason',
  'mode',
  'force',
  'hard',
  'issueNew',
  'role',
  'kind',
  'displayName',
  'email',
  'rights',
  'includeDescendants',
]);

const MAX_DETAIL_TEXT = 200;

export interface AuditResource {
  /** '' when the call names no resource. */
  readonly type: string;
  readonly id: string;
  /** The tenant the request itself named (`tenant_id`, or a create's parent), if any. */
  readonly tenantHint: string;
  /** The request's own idempotency key (`request_id`), if any. */
  readonly idempotencyKey: string;
  readonly detail: Record<string, unknown>;
}

const camel = (snake: string) => snake.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

function field(message: unknown, name: string): unknown {
  return message && typeof message === 'object' ? (message as Record<string, unknown>)[name] : undefined;
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function cut(value: string): string {
  return value.length <= MAX_DETAIL_TEXT ? value : `${value.slice(0, MAX_DETAIL_TEXT)}…`;
}

/** The id of a `type` resource in `message`: at the top, or in a nested message named after it. */
function idIn(message: unknown, type: string): string {
  const idField = ID_FIELDS[type] ?? `${camel(type)}Id`;
  const top = text(field(message, idField));
  if (top) return top;
  for (const nested of NESTED[type] ?? [camel(type)]) {
    const inner = text(field(field(message, nested), idField));
    if (inner) return inner;
  }
  return '';
}

/** Scalar and enum fields of the allow-list, enums by name, long text cut. */
function summary(schema: DescMessage | undefined, message: unknown): Record<string, unknown> {
  const detail: Record<string, unknown> = {};
  if (!schema) return detail;
  for (const f of schema.fields) {
    if (!DETAIL_FIELDS.has(f.localName)) continue;
    const value = field(message, f.localName);
    if (f.fieldKind === 'enum' && typeof value === 'number') {
      if (value !== 0) detail[f.name] = f.enum.values.find((v) => v.number === value)?.name ?? value;
    } else if (f.fieldKind === 'scalar' && value !== '' && value !== false && value !== 0) {
      detail[f.name] =
        typeof value === 'string' ? cut(value) : typeof value === 'bigint' ? String(value) : value;
    }
  }
  return detail;
}

/**
 * The resource of a call `<Service>/<Method>`, from its request and, when it succeeded, its
 * response. Streams pass no messages: the type alone is known.
 */
export function auditResource(
  procedure: string,
  schema: DescMessage | undefined,
  request: unknown,
  response: unknown,
): AuditResource {
  const service = procedure.slice(0, procedure.indexOf('/'));
  const type = METHOD_TYPES[procedure] ?? SERVICE_TYPES[service] ?? '';
  const detail = summary(schema, request);
  const mask = field(request, 'updateMask');
  const paths = field(mask, 'paths');
  if (Array.isArray(paths) && paths.length > 0) detail.update_mask = paths.slice(0, 32).map(String);
  let id = type ? idIn(request, type) || idIn(response, type) : '';
  // A batch create answers with the list: one created resource is the event's, several go in detail.
  const plural = field(response, `${camel(type)}s`);
  if (!id && Array.isArray(plural) && plural.length > 0) {
    const ids = plural.map((item) => idIn(item, type)).filter((v) => v !== '');
    if (ids.length === 1) id = ids[0] ?? '';
    else detail[`${type}_ids`] = ids.slice(0, 100);
  }
  const requests = field(request, 'requests');
  if (Array.isArray(requests)) detail.requests = requests.length;
  // The tenant a request names for what it acts on; a tenant create acts under its parent.
  // A create that carries its resource names the tenant inside it (CreatePriceBook's price_book).
  const tenantHint =
    text(field(request, 'tenantId')) ||
    text(field(request, 'parentTenantId')) ||
    (type ? text(field(field(request, camel(type)), 'tenantId')) : '');
  return {
    type,
    id: cut(id),
    tenantHint: cut(tenantHint),
    idempotencyKey: cut(text(field(request, 'requestId'))),
    detail,
  };
}
