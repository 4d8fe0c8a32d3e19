// Test support for other packages' tests (tests/ and bench/): what they need from the host agent
// beyond its main export. This package's own tests import these modules directly.
export { volumeName } from './runtime/redroid-options.js';
export { bundleStandinPhone, connectEngine, engineSocket, removeScope } from './runtime/test-engine.js';
