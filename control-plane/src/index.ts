export { bearerTransport } from './api/bearer-transport.js';
export { type ControlPlaneConfig, describeConfig, loadConfig } from './config.js';
export { createLogger, type Logger } from './logger.js';
export { type ControlPlane, type StartOptions, startControlPlane } from './server.js';
