import type { MemoryFileSystem } from '../file-system.js';

/** A shell glob (`*`, `?`, `[…]`) as a whole-string regular expression. */
export function globToRegExp(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') out += '.*';
    else if (c === '?') out += '.';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end === -1) out += '\\[';
      else {
        const body = pattern
          .slice(i + 1, end)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\');
        out += `[${body}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < pattern.length) {
      out += pattern[++i]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else out += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${out}$`, 's');
}

const integer = (value: string): number => {
  const n = Number(value.trim() || 'x');
  if (!Number.isInteger(n)) throw new TestError(`${value}: bad number`);
  return n;
};

export class TestError extends Error {
  override readonly name = 'TestError';
}

/**
 * `test` / `[` and `[[`: unary file and string tests, binary comparisons, `!`, `-a`/`-o` (`&&`/`||`
 * inside `[[`) and parentheses. `patterns` holds the indexes of right-hand operands of `==`/`!=`
 * inside `[[` that were unquoted, so compare as globs.
 */
export function evaluateTest(
  args: readonly string[],
  fs: MemoryFileSystem,
  resolve: (path: string) => string,
  { doubleBracket = false, patterns = new Set<number>() } = {},
): boolean {
  let i = 0;
  const and = doubleBracket ? '&&' : '-a';
  const or = doubleBracket ? '||' : '-o';
  const primary = (): boolean => {
    const a = args[i];
    if (a === undefined) throw new TestError('argument expected');
    if (a === '!') {
      i++;
      return !primary();
    }
    if (a === '(') {
      i++;
      const value = disjunction();
      if (args[i++] !== ')') throw new TestError("')' expected");
      return value;
    }
    const op = args[i + 1];
    if (op !== undefined && i + 2 < args.length && isBinary(op)) {
      const b = args[i + 2] ?? '';
      const glob = patterns.has(i + 2);
      i += 3;
      return binary(a, op, b, glob);
    }
    if (/^-[a-zA-Z]$/.test(a) && i + 1 < args.length && args[i + 1] !== and && args[i + 1] !== or) {
      i += 2;
      return unary(a, args[i - 1]!);
    }
    i++;
    return a !== '';
  };
  const conjunction = (): boolean => {
    let value = primary();
    while (args[i] === and) {
      i++;
      const right = primary();
      value = value && right;
    }
    return value;
  };
  const disjunction = (): boolean => {
    let value = conjunction();
    while (args[i] === or) {
      i++;
      const right = conjunction();
      value = value || right;
    }
    return value;
  };
  const unary = (op: string, operand: string): boolean => {
    const entry = op === '-z' || op === '-n' ? undefined : fs.stat(resolve(operand));
    switch (op) {
      case '-z':
        return operand === '';
      case '-n':
        return operand !== '';
      case '-e':
        return entry !== undefined;
      case '-f':
        return entry?.type === 'file';
      case '-d':
        return entry?.type === 'dir';
      case '-s':
        return entry?.type === 'file' && entry.data.byteLength > 0;
      case '-r':
      case '-w':
        return entry !== undefined;
      case '-x':
        return entry !== undefined && (entry.mode & 0o111) !== 0;
      case '-L':
      case '-h':
      case '-p':
      case '-S':
      case '-b':
      case '-c':
        return false;
      default:
        throw new TestError(`${op}: unknown operand`);
    }
  };
  const binary = (a: string, op: string, b: string, glob: boolean): boolean => {
    switch (op) {
      case '=':
      case '==':
        return glob ? globToRegExp(b).test(a) : a === b;
      case '!=':
        return glob ? !globToRegExp(b).test(a) : a !== b;
      case '=~':
        return new RegExp(b).test(a);
      case '<':
        return a < b;
      case '>':
        return a > b;
      case '-eq':
        return integer(a) === integer(b);
      case '-ne':
        return integer(a) !== integer(b);
      case '-lt':
        return integer(a) < integer(b);
      case '-le':
        return integer(a) <= integer(b);
      case '-gt':
        return integer(a) > integer(b);
      default:
        return integer(a) >= integer(b);
    }
  };
  const isBinary = (op: string): boolean =>
    ['=', '==', '!=', '<', '>', '-eq', '-ne', '-lt', '-le', '-gt', '-ge'].includes(op) ||
    (doubleBracket && op === '=~');
  if (args.length === 0) return false;
  const value = disjunction();
  if (i < args.length) throw new TestError(`${args[i]}: unexpected operator`);
  return value;
}
