export { type EmbeddedPlatform, startEmbedded, up } from './up.js';
