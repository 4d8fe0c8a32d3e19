export class ArithmeticError extends Error {
  override readonly name = 'ArithmeticError';
}

const BINARY: Record<string, [number, (a: number, b: number) => number]> = {
  '||': [1, (a, b) => Number(a !== 0 || b !== 0)],
  '&&': [2, (a, b) => Number(a !== 0 && b !== 0)],
  '|': [3, (a, b) => a | b],
  '^': [4, (a, b) => a ^ b],
  '&': [5, (a, b) => a & b],
  '==': [6, (a, b) => Number(a === b)],
  '!=': [6, (a, b) => Number(a !== b)],
  '<': [7, (a, b) => Number(a < b)],
  '<=': [7, (a, b) => Number(a <= b)],
  '>': [7, (a, b) => Number(a > b)],
  '>=': [7, (a, b) => Number(a >= b)],
  '<<': [8, (a, b) => a << b],
  '>>': [8, (a, b) => a >> b],
  '+': [9, (a, b) => a + b],
  '-': [9, (a, b) => a - b],
  '*': [10, (a, b) => a * b],
  '/': [10, (a, b) => (b === 0 ? divideByZero() : Math.trunc(a / b))],
  '%': [10, (a, b) => (b === 0 ? divideByZero() : a % b)],
};

function divideByZero(): never {
  throw new ArithmeticError('divide by zero');
}

/**
 * `$((…))` after parameter expansion: integers, variables by bare name, unary `- + ! ~`, the C
 * binary operators and parentheses (assignments are not supported).
 */
export function evaluateArithmetic(expr: string, lookup: (name: string) => string): number {
  const tokens = expr.match(/\d+|[A-Za-z_][A-Za-z0-9_]*|\|\||&&|==|!=|<=|>=|<<|>>|\S/g) ?? [];
  let i = 0;
  const operand = (): number => {
    const t = tokens[i++];
    if (t === undefined) throw new ArithmeticError(`${expr}: missing operand`);
    if (t === '(') {
      const value = binary(0);
      if (tokens[i++] !== ')') throw new ArithmeticError(`${expr}: ')' expected`);
      return value;
    }
    if (t === '-') return -operand();
    if (t === '+') return operand();
    if (t === '!') return Number(operand() === 0);
    if (t === '~') return ~operand();
    if (/^\d+$/.test(t)) return Number.parseInt(t, t.startsWith('0') && t.length > 1 ? 8 : 10);
    if (/^[A-Za-z_]/.test(t)) {
      const value = lookup(t).trim();
      return value === '' ? 0 : evaluateArithmetic(value, lookup);
    }
    throw new ArithmeticError(`${expr}: unexpected '${t}'`);
  };
  const binary = (minPrecedence: number): number => {
    let left = operand();
    for (;;) {
      const op = BINARY[tokens[i] ?? ''];
      if (!op || op[0] < minPrecedence) return left;
      i++;
      left = op[1](left, binary(op[0] + 1)) | 0;
    }
  };
  if (tokens.length === 0) return 0;
  const value = binary(0);
  if (i < tokens.length) throw new ArithmeticError(`${expr}: unexpected '${tokens[i]}'`);
  return value;
}
