import type { ConnectRouter } from '@connectrpc/connect';
import {
  ApiKeyService,
  ArtifactService,
  AuditService,
  BillingService,
  DeviceService,
  HostService,
  ImageService,
  TenantService,
  UsageService,
  UserService,
  WebhookService,
} from '@cphone/proto';
import { artifactService } from '../artifacts/artifact-service.js';
import { auditService } from '../audit/audit-service.js';
import { billingService } from '../billing/billing-service.js';
import type { Deps } from '../deps.js';
import { deviceService } from '../devices/device-service.js';
import { hostService } from '../hosts/host-service.js';
import { imageService } from '../images/image-service.js';
import { tenantService } from '../tenants/tenant-service.js';
import { usageService } from '../usage/usage-service.js';
import { userService } from '../users/user-service.js';
import { webhookService } from '../webhooks/webhook-service.js';
import { apiKeyService } from './api-key-service.js';

/** Every public API service, registered on one router. */
export function registerServices(router: ConnectRouter, deps: Deps): void {
  router.service(ApiKeyService, apiKeyService(deps));
  router.service(
    HostService,
    hostService({ ...deps, nudgeDrainer: deps.drainer ? () => deps.drainer?.nudge() : undefined }),
  );
  router.service(TenantService, tenantService(deps));
  router.service(ArtifactService, artifactService(deps));
  router.service(DeviceService, deviceService(deps));
  router.service(ImageService, imageService(deps));
  router.service(UserService, userService(deps));
  router.service(AuditService, auditService(deps));
  router.service(BillingService, billingService(deps));
  router.service(WebhookService, webhookService(deps));
  router.service(UsageService, usageService(deps));
}
