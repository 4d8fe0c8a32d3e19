#!/usr/bin/env node
import { up } from './up.js';

const USAGE = `usage: cphone <command>

commands:
  up        start the embedded platform (control plane on PGlite) on localhost
`;

const [command] = process.argv.slice(2);
switch (command) {
  case 'up':
    await up();
    break;
  case undefined:
  case 'help':
  case '--help':
    process.stdout.write(USAGE);
    break;
  default:
    process.stderr.write(`cphone: unknown command ${JSON.stringify(command)}\n${USAGE}`);
    process.exit(2);
}
