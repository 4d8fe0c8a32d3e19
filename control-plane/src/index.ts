export { bearerTransport } from './api/bearer-transport.js';
export { type ControlPlaneConfig, describeConfig, loadConfig } from './config.js';
export { createLogger, type Logger } from './logger.js';
export { type ControlPlane, type StartOptions, startControlPlane } from './server.js';
// Usage sums for billing and reports: exact integer quantities over the rollups (usage/usage-query.ts).
export {
  type UsageGroupBy,
  type UsageQuantities,
  type UsageRow,
  type UsageSelection,
  usageSum,
  usageTotals,
} from './usage/usage-query.js';
