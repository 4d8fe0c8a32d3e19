#!/usr/bin/env node
// Writes lock entries for platform-specific optional dependencies (e.g. @biomejs/cli-win32-x64)
// that the package registry reachable here does not serve. npm 11.19 leaves such "inert" packages
// out of package-lock.json and then `npm ci` refuses the lock as out of sync (npm/cli#9846). An
// entry carrying the package's os/cpu makes the lock complete again; npm never fetches it on a
// platform it does not match. Run after `npm install` changes the lock (idempotent).
import { readFileSync, writeFileSync } from 'node:fs';

const path = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(path, 'utf8'));
const OS = ['darwin', 'linux', 'win32', 'android', 'freebsd', 'openbsd', 'netbsd', 'sunos', 'aix'];
const CPU = ['arm64', 'x64', 'armv7', 'arm', 'ia32', 'ppc64', 's390x', 'riscv64', 'loong64', 'mips64el'];
let added = 0;
for (const [key, entry] of Object.entries(lock.packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const where = `node_modules/${name}`;
    if (lock.packages[where]) continue;
    const parts = name.split('/').pop().split('-');
    const os = parts.find((p) => OS.includes(p));
    const cpu = parts.find((p) => CPU.includes(p));
    if (!os || !cpu) continue;
    lock.packages[where] = {
      version,
      cpu: [cpu === 'armv7' ? 'arm' : cpu],
      ...(entry.dev ? { dev: true } : {}),
      ...(parts.includes('musl') ? { libc: ['musl'] } : {}),
      optional: true,
      os: [os],
    };
    added++;
    void key;
  }
}
if (added) {
  lock.packages = Object.fromEntries(
    Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)),
  );
  writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
}
console.error(`lock-foreign-optionals: ${added} entries added`);
