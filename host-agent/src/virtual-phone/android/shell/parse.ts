/**
 * The grammar of Android's /system/bin/sh (mksh) that adb clients and people's scripts use: words
 * with '…', "…" and \ quoting, $name ${name…} $(…) `…` $((…)), VAR=value prefixes, pipelines,
 * `;` `&` `&&` `||` and newlines, redirections `[n]< [n]> [n]>> [n]>&m [n]<&m &>`, `if`, `while`,
 * `until`, `for`, `case`, `{ …; }`, `( … )`, `[[ … ]]` and `name() { …; }`.
 *
 * Written here rather than taken from npm: just-bash runs commands to completion on strings (no
 * streaming stdin/stdout, which `logcat`, streamed installs and scrcpy's app_process need) over its
 * own file system; sh-syntax (mvdan/sh in WASM) returns node positions without node types and takes
 * ~50 ms per parse; mvdan-sh is an unmaintained GopherJS build.
 */

export type WordPart =
  /** `quoted`: came from '…', "…" or \x, so it is neither field-split nor globbed. */
  | { kind: 'lit'; text: string; quoted: boolean }
  /** $name, ${name}, ${#name}, ${name:-word} … */
  | { kind: 'param'; name: string; op: string; arg: Word | undefined; length: boolean; quoted: boolean }
  | { kind: 'cmdsub'; body: List; quoted: boolean }
  | { kind: 'arith'; expr: Word; quoted: boolean };

export type Word = WordPart[];

export interface Redirect {
  fd: number;
  op: '<' | '>' | '>>' | '>&' | '<&' | '&>';
  target: Word;
}

export type Command =
  | { kind: 'simple'; assignments: { name: string; value: Word }[]; words: Word[]; redirects: Redirect[] }
  | { kind: 'if'; branches: { cond: List; body: List }[]; otherwise: List | undefined; redirects: Redirect[] }
  | { kind: 'loop'; until: boolean; cond: List; body: List; redirects: Redirect[] }
  | { kind: 'for'; name: string; items: Word[] | undefined; body: List; redirects: Redirect[] }
  | { kind: 'case'; word: Word; items: { patterns: Word[]; body: List }[]; redirects: Redirect[] }
  | { kind: 'group'; body: List; subshell: boolean; redirects: Redirect[] }
  /** `[[ … ]]`: operands are words, operators plain strings. */
  | { kind: 'test'; args: (Word | string)[]; redirects: Redirect[] }
  | { kind: 'function'; name: string; body: Command; redirects: Redirect[] };

export interface Pipeline {
  negated: boolean;
  commands: Command[];
}

export interface AndOr {
  first: Pipeline;
  rest: { op: '&&' | '||'; pipeline: Pipeline }[];
}

export type List = AndOr[];

export class ShellSyntaxError extends Error {
  override readonly name = 'ShellSyntaxError';
}

const RESERVED = new Set([
  'if',
  'then',
  'elif',
  'else',
  'fi',
  'while',
  'until',
  'do',
  'done',
  'for',
  'in',
  'case',
  'esac',
  '{',
  '}',
  '!',
  '[[',
]);
const METACHARS = ' \t\n;&|<>()';

export function parse(source: string): List {
  const parser = new Parser(source);
  const list = parser.list([]);
  parser.expectEnd();
  return list;
}

class Parser {
  #i = 0;
  constructor(readonly src: string) {}

  expectEnd(): void {
    this.#blank(true);
    if (this.#i < this.src.length) this.#fail(this.#peekToken());
  }

  /** Commands until one of `stops` (a reserved word, `)` or `;;`) or the end. */
  list(stops: string[]): List {
    const list: List = [];
    for (;;) {
      this.#blank(true);
      if (this.#i >= this.src.length || this.#atStop(stops)) return list;
      const first = this.#pipeline();
      const andOr: AndOr = { first, rest: [] };
      for (;;) {
        this.#blank(false);
        const op = this.src.startsWith('&&', this.#i) ? '&&' : this.src.startsWith('||', this.#i) ? '||' : '';
        if (!op) break;
        this.#i += 2;
        this.#blank(true);
        andOr.rest.push({ op, pipeline: this.#pipeline() });
      }
      list.push(andOr);
      this.#blank(false);
      const c = this.src[this.#i];
      // A background `&` runs in the foreground here: nothing on the phone needs job control.
      if ((c === ';' && this.src[this.#i + 1] !== ';') || (c === '&' && this.src[this.#i + 1] !== '&')) {
        this.#i++;
      } else if (c !== '\n' && c !== undefined && !this.#atStop(stops)) {
        this.#fail(this.#peekToken());
      }
    }
  }

  #atStop(stops: string[]): boolean {
    for (const stop of stops) {
      if (stop === ')' || stop === ';;') {
        if (this.src.startsWith(stop, this.#i)) return true;
      } else if (this.#peekWord() === stop) return true;
    }
    return false;
  }

  #pipeline(): Pipeline {
    let negated = false;
    if (this.#peekWord() === '!') {
      this.#i++;
      negated = true;
    }
    const commands = [this.#command()];
    for (;;) {
      this.#blank(false);
      if (this.src[this.#i] !== '|' || this.src[this.#i + 1] === '|') break;
      this.#i++;
      this.#blank(true);
      commands.push(this.#command());
    }
    return { negated, commands };
  }

  #command(): Command {
    this.#blank(false);
    const word = this.#peekWord();
    let command: Command;
    switch (word) {
      case 'if':
        command = this.#if();
        break;
      case 'while':
      case 'until': {
        this.#keyword(word);
        const cond = this.list(['do']);
        this.#keyword('do');
        const body = this.list(['done']);
        this.#keyword('done');
        command = { kind: 'loop', until: word === 'until', cond, body, redirects: [] };
        break;
      }
      case 'for':
        command = this.#for();
        break;
      case 'case':
        command = this.#case();
        break;
      case '{': {
        this.#keyword('{');
        const body = this.list(['}']);
        this.#keyword('}');
        command = { kind: 'group', body, subshell: false, redirects: [] };
        break;
      }
      case '[[':
        command = this.#doubleBracket();
        break;
      default:
        if (this.src[this.#i] === '(') {
          this.#i++;
          const body = this.list([')']);
          this.#expect(')');
          command = { kind: 'group', body, subshell: true, redirects: [] };
        } else {
          return this.#simple();
        }
    }
    for (let r = this.#redirect(); r; r = this.#redirect()) command.redirects.push(r);
    return command;
  }

  #if(): Command {
    const branches: { cond: List; body: List }[] = [];
    let otherwise: List | undefined;
    this.#keyword('if');
    for (;;) {
      const cond = this.list(['then']);
      this.#keyword('then');
      branches.push({ cond, body: this.list(['elif', 'else', 'fi']) });
      const next = this.#peekWord();
      this.#keyword(next ?? 'fi');
      if (next === 'elif') continue;
      if (next === 'else') {
        otherwise = this.list(['fi']);
        this.#keyword('fi');
      }
      return { kind: 'if', branches, otherwise, redirects: [] };
    }
  }

  #for(): Command {
    this.#keyword('for');
    this.#blank(false);
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.src.slice(this.#i))?.[0];
    if (!name) this.#fail(this.#peekToken());
    this.#i += name.length;
    this.#blank(true);
    let items: Word[] | undefined;
    if (this.#peekWord() === 'in') {
      this.#keyword('in');
      items = [];
      for (;;) {
        this.#blank(false);
        const c = this.src[this.#i];
        if (c === undefined || c === ';' || c === '\n') break;
        items.push(this.#word());
      }
    }
    this.#blank(false);
    if (this.src[this.#i] === ';') this.#i++;
    this.#blank(true);
    this.#keyword('do');
    const body = this.list(['done']);
    this.#keyword('done');
    return { kind: 'for', name, items, body, redirects: [] };
  }

  #case(): Command {
    this.#keyword('case');
    this.#blank(false);
    const word = this.#word();
    this.#blank(true);
    this.#keyword('in');
    const items: { patterns: Word[]; body: List }[] = [];
    for (;;) {
      this.#blank(true);
      if (this.#peekWord() === 'esac') break;
      if (this.src[this.#i] === '(') this.#i++;
      const patterns: Word[] = [];
      for (;;) {
        this.#blank(false);
        patterns.push(this.#word());
        this.#blank(false);
        if (this.src[this.#i] !== '|') break;
        this.#i++;
      }
      this.#expect(')');
      const body = this.list([';;', 'esac']);
      items.push({ patterns, body });
      if (this.src.startsWith(';;', this.#i)) this.#i += 2;
    }
    this.#keyword('esac');
    return { kind: 'case', word, items, redirects: [] };
  }

  #doubleBracket(): Command {
    this.#keyword('[[');
    const args: (Word | string)[] = [];
    for (;;) {
      this.#blank(true);
      if (this.#i >= this.src.length) throw new ShellSyntaxError("syntax error: ']]' missing");
      if (this.src.startsWith(']]', this.#i) && this.#boundary(this.#i + 2)) {
        this.#i += 2;
        return { kind: 'test', args, redirects: [] };
      }
      const op = ['&&', '||', '(', ')', '<', '>'].find((o) => this.src.startsWith(o, this.#i));
      if (op) {
        this.#i += op.length;
        args.push(op);
      } else {
        const word = this.#word();
        const lit = word.length === 1 && word[0]?.kind === 'lit' && !word[0].quoted ? word[0].text : '';
        args.push(lit === '!' ? '!' : word);
      }
    }
  }

  #simple(): Command {
    const command: Command = { kind: 'simple', assignments: [], words: [], redirects: [] };
    for (;;) {
      this.#blank(false);
      const redirect = this.#redirect();
      if (redirect) {
        command.redirects.push(redirect);
        continue;
      }
      const c = this.src[this.#i];
      if (c === undefined || METACHARS.includes(c)) break;
      if (command.words.length === 0) {
        const assignment = /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(this.src.slice(this.#i));
        if (assignment) {
          this.#i += assignment[0].length;
          const c2 = this.src[this.#i];
          const value = c2 === undefined || METACHARS.includes(c2) ? [] : this.#word();
          command.assignments.push({ name: assignment[1]!, value });
          continue;
        }
      }
      // `name() { … }` defines a function.
      if (command.words.length === 0 && command.assignments.length === 0) {
        const fn = /^([A-Za-z_][A-Za-z0-9_]*)\s*\(\s*\)/.exec(this.src.slice(this.#i));
        if (fn) {
          this.#i += fn[0].length;
          this.#blank(true);
          return { kind: 'function', name: fn[1]!, body: this.#command(), redirects: [] };
        }
      }
      command.words.push(this.#word());
    }
    if (!command.words.length && !command.assignments.length && !command.redirects.length) {
      this.#fail(this.#peekToken());
    }
    return command;
  }

  #redirect(): Redirect | undefined {
    this.#blank(false);
    const m = /^(\d?)(&>|>>|>&|<&|>\||>|<)/.exec(this.src.slice(this.#i, this.#i + 4));
    if (!m) return undefined;
    this.#i += m[0].length;
    const raw = m[2]!;
    const op = (raw === '>|' ? '>' : raw) as Redirect['op'];
    const fd = m[1] ? Number(m[1]) : op === '<' || op === '<&' ? 0 : 1;
    this.#blank(false);
    const c = this.src[this.#i];
    if (c === undefined || METACHARS.includes(c)) this.#fail(this.#peekToken() || 'newline');
    return { fd, op, target: this.#word() };
  }

  /** One word at the current position (the caller has skipped blanks). */
  #word(): Word {
    const parts: Word = [];
    const lit = (text: string, quoted: boolean): void => {
      const last = parts.at(-1);
      if (last?.kind === 'lit' && last.quoted === quoted) last.text += text;
      else parts.push({ kind: 'lit', text, quoted });
    };
    while (this.#i < this.src.length) {
      const c = this.src[this.#i]!;
      if (METACHARS.includes(c)) break;
      if (c === "'") {
        const end = this.src.indexOf("'", this.#i + 1);
        if (end === -1) throw new ShellSyntaxError("syntax error: unterminated '");
        lit(this.src.slice(this.#i + 1, end), true);
        this.#i = end + 1;
      } else if (c === '"') {
        this.#i++;
        this.#doubleQuoted(parts, lit);
      } else if (c === '\\') {
        if (this.src[this.#i + 1] === '\n') this.#i += 2;
        else {
          lit(this.src[this.#i + 1] ?? '', true);
          this.#i += 2;
        }
      } else if (c === '$' || c === '`') {
        const part = this.#dollar(false);
        if (part) parts.push(part);
        else lit(c, false);
      } else {
        lit(c, false);
        this.#i++;
      }
    }
    if (parts.length === 0) this.#fail(this.#peekToken());
    return parts;
  }

  #doubleQuoted(parts: Word, lit: (text: string, quoted: boolean) => void): void {
    // An empty "" still makes a (quoted, empty) word.
    lit('', true);
    for (;;) {
      const c = this.src[this.#i];
      if (c === undefined) throw new ShellSyntaxError('syntax error: unterminated "');
      if (c === '"') {
        this.#i++;
        return;
      }
      if (c === '\\' && '"\\$`\n'.includes(this.src[this.#i + 1] ?? '')) {
        if (this.src[this.#i + 1] !== '\n') lit(this.src[this.#i + 1]!, true);
        this.#i += 2;
      } else if (c === '$' || c === '`') {
        const part = this.#dollar(true);
        if (part) parts.push(part);
        else lit(c, true);
      } else {
        lit(c, true);
        this.#i++;
      }
    }
  }

  /** `$…` or a backquoted command at the current position; undefined for a lone `$`. */
  #dollar(quoted: boolean): WordPart | undefined {
    const src = this.src;
    if (src[this.#i] === '`') {
      let j = this.#i + 1;
      let body = '';
      while (j < src.length && src[j] !== '`') {
        if (src[j] === '\\' && '`\\$'.includes(src[j + 1] ?? '')) j++;
        body += src[j];
        j++;
      }
      if (j >= src.length) throw new ShellSyntaxError('syntax error: unterminated `');
      this.#i = j + 1;
      return { kind: 'cmdsub', body: parse(body), quoted };
    }
    const next = src[this.#i + 1];
    if (src.startsWith('$((', this.#i)) {
      this.#i += 3;
      const start = this.#i;
      let depth = 0;
      while (this.#i < src.length && !(depth === 0 && src.startsWith('))', this.#i))) {
        if (src[this.#i] === '(') depth++;
        else if (src[this.#i] === ')') depth--;
        this.#i++;
      }
      if (this.#i >= src.length) throw new ShellSyntaxError("syntax error: '))' missing");
      const expr = new Parser(src.slice(start, this.#i)).#exprWord();
      this.#i += 2;
      return { kind: 'arith', expr, quoted };
    }
    if (next === '(') {
      this.#i += 2;
      const body = this.list([')']);
      this.#expect(')');
      return { kind: 'cmdsub', body, quoted };
    }
    if (next === '{') {
      const close = this.#i + 2;
      let j = close;
      const length = src[j] === '#' && src[j + 1] !== '}';
      if (length) j++;
      const name = /^([A-Za-z_][A-Za-z0-9_]*|[0-9]+|[?#$!@*-])/.exec(src.slice(j))?.[0];
      if (!name) throw new ShellSyntaxError('syntax error: bad substitution');
      j += name.length;
      const op = /^(:?[-=+?]|##?|%%?)/.exec(src.slice(j))?.[0] ?? '';
      j += op.length;
      let arg: Word | undefined;
      this.#i = j;
      if (op) {
        const parts: Word = [];
        const lit = (text: string, q: boolean): void => void parts.push({ kind: 'lit', text, quoted: q });
        while (this.#i < src.length && src[this.#i] !== '}') {
          const c = src[this.#i]!;
          if (c === '"') {
            this.#i++;
            this.#doubleQuoted(parts, lit);
          } else if (c === "'") {
            const end = src.indexOf("'", this.#i + 1);
            lit(src.slice(this.#i + 1, end), true);
            this.#i = end + 1;
          } else if (c === '$' || c === '`') {
            parts.push(this.#dollar(quoted) ?? { kind: 'lit', text: '$', quoted });
          } else {
            lit(c, quoted);
            this.#i++;
          }
        }
        arg = parts;
      }
      if (src[this.#i] !== '}') throw new ShellSyntaxError('syntax error: bad substitution');
      this.#i++;
      return { kind: 'param', name, op, arg, length, quoted };
    }
    const name = /^([A-Za-z_][A-Za-z0-9_]*|[0-9?#$!@*-])/.exec(src.slice(this.#i + 1))?.[0];
    if (!name) {
      this.#i++;
      return undefined;
    }
    this.#i += 1 + name.length;
    return { kind: 'param', name, op: '', arg: undefined, length: false, quoted };
  }

  /** The inside of $((…)): expansions are parsed, everything else stays text. */
  #exprWord(): Word {
    const parts: Word = [];
    while (this.#i < this.src.length) {
      const c = this.src[this.#i]!;
      if (c === '$' || c === '`') {
        parts.push(this.#dollar(true) ?? { kind: 'lit', text: '$', quoted: true });
      } else {
        parts.push({ kind: 'lit', text: c, quoted: true });
        this.#i++;
      }
    }
    return parts;
  }

  #keyword(word: string): void {
    this.#blank(true);
    if (this.#peekWord() !== word) this.#fail(this.#peekToken() || 'end of file', word);
    this.#i += word.length;
  }

  #expect(c: string): void {
    this.#blank(true);
    if (this.src[this.#i] !== c) this.#fail(this.#peekToken() || 'end of file', c);
    this.#i++;
  }

  /** The reserved word at the current position, if one is there. */
  #peekWord(): string | undefined {
    this.#blank(false);
    const m = /^(\[\[|[{}!]|[a-z]+)/.exec(this.src.slice(this.#i, this.#i + 6));
    if (!m || !RESERVED.has(m[0]) || !this.#boundary(this.#i + m[0].length)) return undefined;
    return m[0];
  }

  #boundary(at: number): boolean {
    const c = this.src[at];
    return c === undefined || METACHARS.includes(c);
  }

  #peekToken(): string {
    return /^\S+/.exec(this.src.slice(this.#i))?.[0]?.slice(0, 20) ?? '';
  }

  /** Skips blanks, comments, escaped newlines and (with `newlines`) newlines. */
  #blank(newlines: boolean): void {
    for (;;) {
      const c = this.src[this.#i];
      if (c === ' ' || c === '\t' || (newlines && c === '\n')) this.#i++;
      else if (c === '\\' && this.src[this.#i + 1] === '\n') this.#i += 2;
      else if (c === '#') {
        while (this.#i < this.src.length && this.src[this.#i] !== '\n') this.#i++;
      } else return;
    }
  }

  #fail(token: string, expected?: string): never {
    throw new ShellSyntaxError(
      expected
        ? `syntax error: '${token}' unexpected (expecting '${expected}')`
        : `syntax error: '${token}' unexpected`,
    );
  }
}
