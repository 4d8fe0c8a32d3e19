// The public Connect API, as resellers use it: the generated clients over one transport that sends
// the context's key as a Bearer token. The CLI has no other way in.
import { type Client, createClient, type Interceptor } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import {
  ApiKeyService,
  ArtifactService,
  AuditService,
  DeviceService,
  HostService,
  ImageService,
  TenantService,
  UsageService,
} from '@cphone/proto/api';
import { versionString } from '@cphone/proto/version';
import { resolveTarget, type Target, type TargetFlags } from './config.js';
import { CliError, EXIT } from './errors.js';

export interface Api {
  readonly target: Target;
  readonly devices: Client<typeof DeviceService>;
  readonly hosts: Client<typeof HostService>;
  readonly tenants: Client<typeof TenantService>;
  readonly images: Client<typeof ImageService>;
  readonly apiKeys: Client<typeof ApiKeyService>;
  readonly artifacts: Client<typeof ArtifactService>;
  readonly audit: Client<typeof AuditService>;
  readonly usage: Client<typeof UsageService>;
}

export function createApi(target: Target): Api {
  const auth: Interceptor = (next) => (req) => {
    if (target.key) req.header.set('authorization', `Bearer ${target.key}`);
    req.header.set('user-agent', `cphone-cli/${CLI_VERSION}`);
    return next(req);
  };
  const transport = createConnectTransport({
    baseUrl: target.server,
    httpVersion: '1.1',
    ...(target.ca ? { nodeOptions: { ca: target.ca } } : {}),
    interceptors: [auth],
  });
  return {
    target,
    devices: createClient(DeviceService, transport),
    hosts: createClient(HostService, transport),
    tenants: createClient(TenantService, transport),
    images: createClient(ImageService, transport),
    apiKeys: createClient(ApiKeyService, transport),
    artifacts: createClient(ArtifactService, transport),
    audit: createClient(AuditService, transport),
    usage: createClient(UsageService, transport),
  };
}

/** Resolves the context and refuses to go on without a key (every API call needs one). */
export async function connectApi(flags: TargetFlags): Promise<Api> {
  const target = await resolveTarget(flags);
  if (!target.key) {
    throw new CliError(
      `no API key for ${target.server}: run \`cphone login\` (the key on stdin), set CPHONE_API_KEY, or start the embedded platform with \`npm start\``,
      EXIT.permissionDenied,
    );
  }
  return createApi(target);
}

/** "0.2.0 (36f1448)": embedded by the bundle; from source, the package's version and "source". */
export const CLI_VERSION: string = versionString();
