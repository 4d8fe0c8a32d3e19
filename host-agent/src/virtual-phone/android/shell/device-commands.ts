import { keyCodeFromName } from '../keyboard.js';
import { renderScreenPng } from '../png.js';
import { type Command, untilAborted } from './command.js';
import { logcat } from './logcat-command.js';

const usage = async (stderr: (s: string) => Promise<void>, text: string): Promise<number> => {
  await stderr(`${text}\n`);
  return 1;
};

const input: Command = async ({ argv, device, stderr }) => {
  let args = argv.slice(1);
  // An optional source comes first: `input touchscreen tap 1 2`.
  if (
    ['touchscreen', 'keyboard', 'mouse', 'dpad', 'gamepad', 'trackball', 'stylus'].includes(args[0] ?? '')
  ) {
    args = args.slice(1);
  }
  const [verb, ...rest] = args;
  const numbers = rest.map((a) => Number.parseFloat(a));
  switch (verb) {
    case 'tap':
      if (numbers.length < 2 || numbers.some(Number.isNaN))
        return usage(stderr, 'Error: usage: input tap <x> <y>');
      device.events.recordInput({ kind: 'tap', x: numbers[0]!, y: numbers[1]! });
      return 0;
    case 'swipe':
      if (numbers.length < 4 || numbers.some(Number.isNaN)) {
        return usage(stderr, 'Error: usage: input swipe <x1> <y1> <x2> <y2> [duration(ms)]');
      }
      device.events.recordInput({
        kind: 'swipe',
        x1: numbers[0]!,
        y1: numbers[1]!,
        x2: numbers[2]!,
        y2: numbers[3]!,
        durationMs: numbers[4] ?? 300,
      });
      return 0;
    case 'keyevent': {
      const longpress = rest.includes('--longpress');
      const keys = rest.filter((a) => !a.startsWith('--'));
      if (keys.length === 0)
        return usage(stderr, 'Error: usage: input keyevent [--longpress] <key code number or name> ...');
      for (const key of keys) {
        device.events.recordInput({ kind: 'keyevent', key, longpress });
        const code = keyCodeFromName(key);
        if (code !== undefined) device.focusedField.key(code, 0);
      }
      return 0;
    }
    case 'text': {
      if (rest.length === 0) return usage(stderr, 'Error: usage: input text <string>');
      // Android's `input text` turns %s into a space, as shells cannot pass one otherwise.
      const text = rest.join(' ').replace(/%s/g, ' ');
      device.events.recordInput({ kind: 'text', text });
      // Typed as key events: what the virtual keyboard cannot map never arrives.
      device.input.injectText(text);
      return 0;
    }
    default:
      return usage(stderr, `Error: Unknown command: ${verb ?? ''}`);
  }
};

const screencap: Command = async ({ argv, device, stdout }) => {
  const file = argv.slice(1).find((a) => !a.startsWith('-'));
  const png = renderScreenPng(device.screen.width, device.screen.height, device.screenshots++);
  if (file) device.fs.write(file, png);
  else await stdout(png);
  return 0;
};

const reboot: Command = async ({ device }) => {
  // The kernel restarts right away; adb sees its connection drop, as with a real phone.
  setImmediate(() => device.reboot());
  await untilAborted(device.lifetime);
  return 0;
};

export const deviceCommands: ReadonlyMap<string, Command> = new Map([
  ['input', input],
  ['screencap', screencap],
  ['logcat', logcat],
  ['reboot', reboot],
]);
