export { type MeteredDevice, UsageSampler, type UsageSamplerOptions } from './usage-sampler.js';
export {
  atomicWrite,
  type SampleInit,
  type SpooledSample,
  UsageSpool,
  type UsageSpoolOptions,
} from './usage-spool.js';
