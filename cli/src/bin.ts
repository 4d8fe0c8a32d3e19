#!/usr/bin/env node
import { main } from './main.js';

// main() resolves once the command is done; stdout and stderr are synchronous on Linux pipes and
// TTYs, so exiting here loses no output and does not wait for idle keep-alive sockets.
process.exit(await main(process.argv.slice(2)));
