// Completion scripts load in a real bash and complete commands, flags, flag values and live host
// names; the markdown reference in cli/REFERENCE.md is what `cphone docs` prints now.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
// @ts-expect-error plain JavaScript build script, no types
import { BUNDLE } from '../../cli/build.mjs';
import { type CliPlatform, startCliPlatform } from './harness.js';

let p: CliPlatform;
before(async () => {
  p = await startCliPlatform({ agent: false });
});
after(() => p?.close());

/**
 * What bash completes for a command line whose last word is being typed. (Asynchronously: the
 * control plane answering the live names runs in this process.)
 */
async function complete(words: string[]): Promise<string[]> {
  const script = `
cphone() { "${process.execPath}" "${BUNDLE}" "$@"; }
source <(cphone completion bash) || exit 9
complete -p cphone >/dev/null || exit 8
COMP_WORDS=(cphone ${words.map((w) => `'${w}'`).join(' ')})
COMP_CWORD=${words.length}
_cphone_complete
printf '%s\\n' "\${COMPREPLY[@]}"
`;
  const r = await promisify(execFile)('bash', ['-c', script], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...p.env },
  });
  return r.stdout.split('\n').filter(Boolean).sort();
}

test('the bash script completes commands, verbs, flags, flag values and live host names', async () => {
  assert.ok((await complete([''])).includes('hosts'));
  assert.deepEqual(await complete(['hos']), ['hosts']);
  assert.ok((await complete(['hosts', 'dr'])).includes('drain'));
  assert.ok((await complete(['hosts', 'drain', '--m'])).includes('--mode'));
  assert.deepEqual(await complete(['hosts', 'drain', '--mode', '']), ['migrate', 'stop']);
  assert.deepEqual(await complete(['hosts', 'get', '-o', 'y']), ['yaml']);
  assert.deepEqual(await complete(['hosts', 'describe', '']), ['e2e-host']);
});

test('zsh and fish scripts are printed; an unknown shell is a usage error', async () => {
  for (const shell of ['zsh', 'fish']) {
    const r = await p.cli(['completion', shell]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /cphone __complete --/);
  }
  const bad = await p.cli(['completion', 'tcsh']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /"tcsh" is not one of bash, zsh, fish/);
});

test('cli/REFERENCE.md is the reference the command tree generates now', async () => {
  const r = await p.cli(['docs']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^### cphone hosts drain$/m);
  const committed = await readFile(new URL('../../cli/REFERENCE.md', import.meta.url), 'utf8');
  assert.equal(committed, r.stdout, 'regenerate it: npx cphone docs > cli/REFERENCE.md');
});

test('login stores a key read from stdin in a context; contexts switch with use-context', async () => {
  const bare = { XDG_CONFIG_HOME: p.configHome, CPHONE_API_URL: '', CPHONE_API_KEY: '' };
  const wrong = await p.cli(['login', '--context', 'lab', '--server', p.h.plane.httpUrl], {
    env: bare,
    input: 'cpk_not_a_key\n',
  });
  assert.equal(wrong.code, 5, wrong.stderr);
  const ok = await p.cli(['login', '--context', 'lab', '--server', p.h.plane.httpUrl], {
    env: bare,
    input: `${p.h.token}\n`,
  });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stderr, /key stored in context "lab"/);
  const contexts = await p.cli(['config', 'get-contexts', '-o', 'json'], { env: bare });
  const doc = JSON.parse(contexts.stdout) as {
    currentContext: string;
    contexts: { name: string; key?: string }[];
  };
  assert.equal(doc.currentContext, 'lab');
  assert.deepEqual(doc.contexts, [{ name: 'lab', server: p.h.plane.httpUrl, key: 'REDACTED' }]);
  assert.equal((await p.cli(['hosts', 'get', '-o', 'name'], { env: bare })).stdout, 'e2e-host\n');
  await p.cli(['config', 'set-context', 'nowhere', '--server', 'http://127.0.0.1:9'], { env: bare });
  assert.equal((await p.cli(['config', 'use-context', 'nowhere'], { env: bare })).code, 0);
  const unreachable = await p.cli(['hosts', 'get'], { env: bare });
  assert.equal(unreachable.code, 5, 'no key in that context');
  const missing = await p.cli(['config', 'use-context', 'nope'], { env: bare });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no context "nope"/);
});
