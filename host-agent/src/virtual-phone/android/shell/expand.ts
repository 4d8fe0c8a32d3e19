import { posix } from 'node:path';
import type { MemoryFileSystem } from '../file-system.js';
import { ArithmeticError, evaluateArithmetic } from './arithmetic.js';
import type { List, Word, WordPart } from './parse.js';
import { globToRegExp } from './test-expression.js';

/** What expansion needs from the running shell. */
export interface ExpansionScope {
  get(name: string): string | undefined;
  set(name: string, value: string): void;
  readonly positional: readonly string[];
  readonly status: number;
  readonly pid: number;
  readonly cwd: string;
  readonly fs: MemoryFileSystem;
  /** Runs `$(…)` in a subshell; its stdout without trailing newlines. */
  substitute(body: List): Promise<string>;
}

/** `${x?msg}` on an unset x, an arithmetic error …: the command is not run (status 1, as sh). */
export class ExpansionError extends Error {
  override readonly name = 'ExpansionError';
}

const IFS = /[ \t\n]+/;

/** A word as one string: no field splitting, no globbing (assignments, redirection targets, case). */
export async function expandString(word: Word, scope: ExpansionScope): Promise<string> {
  let out = '';
  for (const part of word) out += part.kind === 'lit' ? part.text : await expandPart(part, scope);
  return out;
}

/** A word as a glob pattern: quoted characters are escaped (case patterns, `[[ x == pat ]]`). */
export async function expandPattern(word: Word, scope: ExpansionScope): Promise<string> {
  let out = '';
  for (const part of word) {
    const text = part.kind === 'lit' ? part.text : await expandPart(part, scope);
    out += part.quoted ? text.replace(/[*?[\]\\]/g, '\\$&') : text;
  }
  return out;
}

/** Words into argv: expansions, field splitting of unquoted results, then pathname globbing. */
export async function expandWords(words: readonly Word[], scope: ExpansionScope): Promise<string[]> {
  const argv: string[] = [];
  for (const word of words) argv.push(...(await expandFields(word, scope)));
  return argv;
}

async function expandFields(word: Word, scope: ExpansionScope): Promise<string[]> {
  const fields: string[] = [];
  let text = '';
  let pattern = '';
  let glob = false;
  let present = false;
  const finish = (): void => {
    if (!present && text === '') return;
    fields.push(...(glob ? (globPaths(pattern, scope) ?? [text]) : [text]));
    text = '';
    pattern = '';
    glob = false;
    present = false;
  };
  const append = (value: string, quoted: boolean): void => {
    text += value;
    pattern += quoted ? value.replace(/[*?[\]\\]/g, '\\$&') : value;
    if (!quoted && /[*?[]/.test(value)) glob = true;
    if (quoted || value !== '') present = true;
  };
  for (const part of word) {
    if (part.kind === 'lit') {
      append(part.text, part.quoted);
      continue;
    }
    if (part.kind === 'param' && part.name === '@' && part.quoted && !part.op && !part.length) {
      // "$@": one field per positional parameter.
      scope.positional.forEach((arg, k) => {
        if (k > 0) finish();
        append(arg, true);
      });
      continue;
    }
    const value = await expandPart(part, scope);
    if (part.quoted) {
      append(value, true);
      continue;
    }
    value.split(IFS).forEach((piece, k) => {
      if (k > 0) finish();
      append(piece, false);
    });
  }
  finish();
  return fields;
}

async function expandPart(part: Exclude<WordPart, { kind: 'lit' }>, scope: ExpansionScope): Promise<string> {
  switch (part.kind) {
    case 'cmdsub':
      return scope.substitute(part.body);
    case 'arith': {
      const expr = await expandString(part.expr, scope);
      try {
        return String(evaluateArithmetic(expr, (name) => scope.get(name) ?? ''));
      } catch (error) {
        if (error instanceof ArithmeticError) throw new ExpansionError(error.message);
        throw error;
      }
    }
    case 'param':
      return expandParameter(part, scope);
  }
}

function special(name: string, scope: ExpansionScope): string | undefined {
  switch (name) {
    case '?':
      return String(scope.status);
    case '$':
      return String(scope.pid);
    case '#':
      return String(scope.positional.length);
    case '@':
    case '*':
      return scope.positional.join(' ');
    case '0':
      return '/system/bin/sh';
    case '!':
    case '-':
      return '';
  }
  if (/^\d+$/.test(name)) return scope.positional[Number(name) - 1];
  return scope.get(name);
}

async function expandParameter(
  part: Extract<WordPart, { kind: 'param' }>,
  scope: ExpansionScope,
): Promise<string> {
  const value = special(part.name, scope);
  if (part.length) return String((value ?? '').length);
  const { op } = part;
  const arg = async (): Promise<string> => (part.arg ? expandString(part.arg, scope) : '');
  const unset = op.startsWith(':') ? !value : value === undefined;
  switch (op) {
    case '-':
    case ':-':
      return unset ? arg() : (value ?? '');
    case '=':
    case ':=':
      if (unset) scope.set(part.name, await arg());
      return scope.get(part.name) ?? '';
    case '+':
    case ':+':
      return unset ? '' : arg();
    case '?':
    case ':?':
      if (unset) throw new ExpansionError(`${part.name}: ${(await arg()) || 'parameter null or not set'}`);
      return value ?? '';
    case '#':
    case '##':
    case '%':
    case '%%':
      return trim(value ?? '', part.arg ? await expandPattern(part.arg, scope) : '', op);
    default:
      return value ?? '';
  }
}

/** ${x#pat} ${x##pat} ${x%pat} ${x%%pat}: the shortest or longest matching prefix or suffix removed. */
function trim(value: string, pattern: string, op: string): string {
  const re = globToRegExp(pattern);
  const lengths = [...Array(value.length + 1).keys()];
  if (op === '##' || op === '%%') lengths.reverse();
  for (const n of lengths) {
    if (op.startsWith('#') && re.test(value.slice(0, n))) return value.slice(n);
    if (op.startsWith('%') && re.test(value.slice(value.length - n))) return value.slice(0, value.length - n);
  }
  return value;
}

/** Paths matching a glob, sorted; undefined when none match (the word then stays as written). */
function globPaths(pattern: string, scope: ExpansionScope): string[] | undefined {
  const absolute = pattern.startsWith('/');
  const segments = pattern.split('/').filter(Boolean);
  let bases = [absolute ? '/' : ''];
  for (const segment of segments) {
    const next: string[] = [];
    for (const base of bases) {
      const dir = posix.resolve(scope.cwd, base || '.');
      if (!/(^|[^\\])[*?[]/.test(segment)) {
        const unescaped = segment.replace(/\\(.)/g, '$1');
        if (scope.fs.stat(posix.join(dir, unescaped))) next.push(posix.join(base, unescaped));
        continue;
      }
      if (scope.fs.stat(dir)?.type !== 'dir') continue;
      const re = globToRegExp(segment);
      for (const { name } of scope.fs.list(dir)) {
        if (re.test(name) && (!name.startsWith('.') || segment.startsWith('.'))) {
          next.push(posix.join(base, name));
        }
      }
    }
    bases = next;
  }
  return bases.length > 0 ? bases.sort() : undefined;
}
