// @cphone/web: the web console (src/console) and its build; see README.md.
export { buildConsole, CONSOLE_DIR, ensureConsoleBuilt } from './build.js';
