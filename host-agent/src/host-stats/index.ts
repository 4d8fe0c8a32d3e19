export { type HostCapacity, type HostLoadSample, HostStats, type HostStatsOptions } from './host-stats.js';
export {
  type CpuTimes,
  cpuPercent,
  type MemInfo,
  parseLoadAvg,
  parseMemInfo,
  parseProcStat,
} from './proc.js';
