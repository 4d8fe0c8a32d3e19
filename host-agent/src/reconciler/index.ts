export { type BootProbe, portOpenBootProbe } from './boot-probe.js';
export { type Desired, desiredFromProto } from './desired.js';
export { DesiredStore } from './desired-store.js';
export { Reconciler, type ReconcilerOptions } from './reconciler.js';
export { decideAfterExit, type ExitDecision, type ExitFacts } from './restart-policy.js';
export { KeyedWorkQueue } from './work-queue.js';
