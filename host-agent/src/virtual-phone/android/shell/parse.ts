/**
 * Enough of mksh's grammar for what adb clients send: words with '…', "…" and \ quoting,
 * VAR=value prefixes, `;` `&&` `||` `|`, and the redirections `>` `>>` `<` `2>&1` `2>file`.
 */
export interface Redirect {
  fd: 0 | 1 | 2;
  /** `append` for >>, `dup` for 2>&1 (target is the fd), else read/write a file. */
  kind: 'read' | 'write' | 'append' | 'dup';
  target: string;
}

export interface SimpleCommand {
  assignments: Record<string, string>;
  argv: string[];
  redirects: Redirect[];
}

export interface Pipeline {
  commands: SimpleCommand[];
  /** How this pipeline joins the previous one. */
  join: ';' | '&&' | '||';
}

export class ShellSyntaxError extends Error {
  override readonly name = 'ShellSyntaxError';
}

type Token = { word: string } | { op: string };

const OPERATORS = ['&&', '||', '2>&1', '>>', '2>', ';', '|', '>', '<', '&'] as const;

export function tokenize(line: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let word: string | undefined;
  const flush = (): void => {
    if (word !== undefined) tokens.push({ word });
    word = undefined;
  };
  while (i < line.length) {
    const c = line[i]!;
    if (c === ' ' || c === '\t' || c === '\n') {
      flush();
      i++;
      continue;
    }
    if (word === undefined && c === '#') break;
    const op = OPERATORS.find(
      (o) => line.startsWith(o, i) && (o !== '2>' && o !== '2>&1' ? true : word === undefined),
    );
    if (op) {
      flush();
      tokens.push({ op });
      i += op.length;
      continue;
    }
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end === -1) throw new ShellSyntaxError("unterminated '");
      word = (word ?? '') + line.slice(i + 1, end);
      i = end + 1;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      let text = '';
      while (j < line.length && line[j] !== '"') {
        if (line[j] === '\\' && j + 1 < line.length && '"\\$`'.includes(line[j + 1]!)) {
          text += line[j + 1];
          j += 2;
        } else {
          text += line[j];
          j++;
        }
      }
      if (j >= line.length) throw new ShellSyntaxError('unterminated "');
      word = (word ?? '') + text;
      i = j + 1;
      continue;
    }
    if (c === '\\' && i + 1 < line.length) {
      word = (word ?? '') + line[i + 1];
      i += 2;
      continue;
    }
    word = (word ?? '') + c;
    i++;
  }
  flush();
  return tokens;
}

export function parse(line: string): Pipeline[] {
  const pipelines: Pipeline[] = [];
  let join: Pipeline['join'] = ';';
  let commands: SimpleCommand[] = [];
  let current: SimpleCommand = { assignments: {}, argv: [], redirects: [] };
  const endCommand = (): void => {
    if (current.argv.length || Object.keys(current.assignments).length) commands.push(current);
    current = { assignments: {}, argv: [], redirects: [] };
  };
  const endPipeline = (next: Pipeline['join']): void => {
    endCommand();
    if (commands.length) pipelines.push({ commands, join });
    commands = [];
    join = next;
  };
  const tokens = tokenize(line);
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if ('word' in token) {
      const assignment = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(token.word);
      if (assignment && current.argv.length === 0) current.assignments[assignment[1]!] = assignment[2]!;
      else current.argv.push(token.word);
      continue;
    }
    switch (token.op) {
      case ';':
      case '&':
        endPipeline(';');
        break;
      case '&&':
      case '||':
        endPipeline(token.op);
        break;
      case '|':
        endCommand();
        break;
      case '2>&1':
        current.redirects.push({ fd: 2, kind: 'dup', target: '1' });
        break;
      default: {
        const next = tokens[++i];
        if (!next || !('word' in next)) throw new ShellSyntaxError(`syntax error: '${token.op}' unexpected`);
        const fd = token.op === '<' ? 0 : token.op === '2>' ? 2 : 1;
        const kind = token.op === '<' ? 'read' : token.op === '>>' ? 'append' : 'write';
        current.redirects.push({ fd, kind, target: next.word });
      }
    }
  }
  endPipeline(';');
  return pipelines;
}
