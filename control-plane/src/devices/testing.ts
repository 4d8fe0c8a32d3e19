// Test support for the device and image suites: the real HTTP API (startTestApi) with both
// services over a fresh store, and a stub gateway whose command answers a test sets.
import { create } from '@bufbuild/protobuf';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import type { Client, ConnectRouter } from '@connectrpc/connect';
import { agentv1, DeviceService, ImageService } from '@cphone/proto';
import { startTestApi, type TestApi } from '../api/test-api.js';
import type { ControlPlaneConfig } from '../config.js';
import { createStubGateway } from '../gateway/testing.js';
import type { CommandKind } from '../gateway/types.js';
import { imageService } from '../images/image-service.js';
import { sessionFleetFeed } from '../placement/fleet-feed.js';
import { Planner } from '../placement/planner.js';
import type { Database, Role } from '../store/schema.js';
import type { TestDatabase } from '../store/test-database.js';
import { createTestStore } from '../testing.js';
import { type DeviceServiceDeps, deviceService } from './device-service.js';

export interface SentCommand {
  hostId: string;
  deviceId: string;
  kind: CommandKind;
}

export type CommandAnswer = Omit<
  Parameters<typeof create<typeof agentv1.CommandResultSchema>>[1] & object,
  '$typeName'
>;

export interface DeviceTestServer {
  readonly store: TestDatabase<Database>;
  readonly api: TestApi;
  readonly deps: DeviceServiceDeps;
  /** Hosts told desiredChanged, in order. */
  readonly desired: string[];
  readonly commands: SentCommand[];
  /** How the stub agent answers the next commands (default: UNAVAILABLE). */
  answer: (command: SentCommand) => CommandAnswer;
  clients(token: string): { devices: Client<typeof DeviceService>; images: Client<typeof ImageService> };
  /** A tenant (under `parent`, default the platform) with a key of `role`. */
  addTenant(id: string, role?: Role, parent?: string): Promise<string>;
  close(): Promise<void>;
}

/** An Android 14 image as a platform admin creates it (CreateImageRequest.image). */
export const ANDROID_14 = {
  displayName: 'Android 14',
  containerImage: 'redroid/redroid:14.0.0_64only-latest',
  archs: ['arm64'],
  defaultSpec: { vcpuMillicores: 2000, memoryMib: 4096, storageGib: 32 },
  minMemoryMib: 1024,
};

export interface DeviceTestServerOptions {
  /** More services beside the device and image services (e.g. AuditService). */
  routes?: (router: ConnectRouter, deps: DeviceServiceDeps) => void;
  config?: Partial<ControlPlaneConfig>;
}

export async function startDeviceTestServer(
  options: DeviceTestServerOptions = {},
): Promise<DeviceTestServer> {
  const store = await createTestStore();
  const commands: SentCommand[] = [];
  const server = {
    answer: (_: SentCommand): CommandAnswer => ({
      code: agentv1.CommandCode.UNAVAILABLE,
      message: 'no agent',
    }),
  };
  const gateway = createStubGateway(async (hostId, deviceId, kind): Promise<agentv1.CommandResult> => {
    const sent = { hostId, deviceId, kind };
    commands.push(sent);
    return create(agentv1.CommandResultSchema, {
      commandId: `cmd-${commands.length}`,
      finishedAt: timestampNow(),
      ...server.answer(sent),
    });
  });
  let deps: DeviceServiceDeps | undefined;
  const api = await startTestApi({
    db: store.db,
    config: { publicUrl: 'http://cp.test:8080', ...options.config },
    routes: (router, base) => {
      deps = {
        ...base,
        gateway,
        planner: new Planner({
          ...base,
          desiredChanged: (id) => gateway.desiredChanged(id),
          feed: sessionFleetFeed(() => store.session()),
        }),
      };
      router.service(DeviceService, deviceService(deps));
      router.service(ImageService, imageService(deps));
      options.routes?.(router, deps);
    },
  });
  if (!deps) throw new Error('routes were not registered');
  const ready = deps;
  return Object.assign(server, {
    store,
    api,
    deps: ready,
    desired: gateway.desired,
    commands,
    clients: (token: string) => ({
      devices: api.client(DeviceService, token),
      images: api.client(ImageService, token),
    }),
    async addTenant(id: string, role: Role = 'tenant_user', parent = 'platform') {
      await api.tenant(id, parent === 'platform' ? 'reseller' : 'customer', parent);
      return api.token(id, role);
    },
    async close() {
      await api.close();
      await ready.planner.close();
      await store.close();
    },
  });
}
