// `npm start` / `cphone up`: the embedded platform in this process (see up.ts).
import { up } from './up.js';

await up({ logsToStderr: process.argv.includes('--logs') });
