// cphone devices input: taps, swipes, keys and text into a running phone (SendInput).
import { create } from '@bufbuild/protobuf';
import { type InputEvent, InputEventSchema, KeyAction } from '@cphone/proto/api';
import type { Command } from 'commander';
import { action, examples, intOption } from '../lib/command.js';
import { UsageError } from '../lib/errors.js';
import { printDoc } from '../lib/output.js';
import { resolveDevice } from '../lib/resolve.js';

/**
 * android.view.KeyEvent's KEYCODE_* numbers for the keys people name on a command line (the API
 * takes numbers only). Letters and digits are computed; any number is accepted as is.
 */
const KEYCODES: Readonly<Record<string, number>> = {
  HOME: 3,
  BACK: 4,
  CALL: 5,
  ENDCALL: 6,
  STAR: 17,
  POUND: 18,
  DPAD_UP: 19,
  DPAD_DOWN: 20,
  DPAD_LEFT: 21,
  DPAD_RIGHT: 22,
  DPAD_CENTER: 23,
  VOLUME_UP: 24,
  VOLUME_DOWN: 25,
  POWER: 26,
  CAMERA: 27,
  COMMA: 55,
  PERIOD: 56,
  TAB: 61,
  SPACE: 62,
  ENTER: 66,
  DEL: 67,
  MENU: 82,
  SEARCH: 84,
  MEDIA_PLAY_PAUSE: 85,
  PAGE_UP: 92,
  PAGE_DOWN: 93,
  ESCAPE: 111,
  FORWARD_DEL: 112,
  MOVE_HOME: 122,
  MOVE_END: 123,
  VOLUME_MUTE: 164,
  APP_SWITCH: 187,
  BRIGHTNESS_DOWN: 220,
  BRIGHTNESS_UP: 221,
  SLEEP: 223,
  WAKEUP: 224,
  CUT: 277,
  COPY: 278,
  PASTE: 279,
};

export function keycodeOf(name: string): number {
  if (/^\d+$/.test(name)) {
    const n = Number(name);
    if (n > 0 && n < 1000) return n;
  }
  const bare = name.toUpperCase().replace(/^KEYCODE_/, '');
  if (/^[A-Z]$/.test(bare)) return 29 + bare.charCodeAt(0) - 65;
  if (/^[0-9]$/.test(bare)) return 7 + Number(bare);
  const code = KEYCODES[bare];
  if (code === undefined) {
    throw new UsageError(
      `key "${name}" is not a key code (1-999) or a name such as HOME, BACK, ENTER, DEL, A, 5, VOLUME_UP (KEYCODE_ prefix optional)`,
    );
  }
  return code;
}

function pixels<N extends readonly string[]>(
  values: readonly string[],
  names: N,
): { [K in keyof N]: number } {
  if (values.length !== names.length) {
    throw new UsageError(`expected ${names.join(' ')} (${names.length} numbers), got ${values.length}`);
  }
  return values.map((v, i) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 100_000)
      throw new UsageError(`${names[i]} "${v}" is not a pixel coordinate (a whole number from 0)`);
    return n;
  }) as { [K in keyof N]: number };
}

/** The events of one `input` command line. */
export function inputEvents(
  kind: string,
  args: readonly string[],
  opts: { duration?: number },
): InputEvent[] {
  const durationMs = opts.duration ?? 0;
  switch (kind) {
    case 'tap': {
      const [x, y] = pixels(args, ['X', 'Y'] as const);
      return [create(InputEventSchema, { kind: { case: 'tap', value: { x, y, durationMs } } })];
    }
    case 'swipe': {
      const [fromX, fromY, toX, toY] = pixels(args, ['X1', 'Y1', 'X2', 'Y2'] as const);
      return [
        create(InputEventSchema, { kind: { case: 'swipe', value: { fromX, fromY, toX, toY, durationMs } } }),
      ];
    }
    case 'key':
      if (!args.length) throw new UsageError('key needs a key code or name, e.g. HOME');
      return args.map((k) =>
        create(InputEventSchema, {
          kind: { case: 'key', value: { keycode: keycodeOf(k), action: KeyAction.PRESS_RELEASE } },
        }),
      );
    case 'text': {
      const text = args.join(' ');
      if (!text) throw new UsageError('text needs the text to type, e.g. text "hello world"');
      return [create(InputEventSchema, { kind: { case: 'text', value: { text } } })];
    }
    default:
      throw new UsageError(`"${kind}" is not an input kind: tap, swipe, key or text`);
  }
}

export function registerDeviceInput(devices: Command): void {
  examples(
    devices
      .command('input')
      .description('send input to a phone: tap X Y | swipe X1 Y1 X2 Y2 | key KEY... | text "..."')
      .argument('<device>', 'phone name or id')
      .argument('<kind>', 'tap, swipe, key or text')
      .argument(
        '[args...]',
        'coordinates in screen pixels (portrait, from top-left), key codes or names, or text',
      )
      .option(
        '--duration <ms>',
        'how long a tap is held or a swipe takes',
        intOption('--duration', 0, 60_000),
      )
      .action(
        action<{ duration?: number }>(async (ctx, [name, kind, args], opts) => {
          const events = inputEvents(kind as string, (args as string[]) ?? [], opts);
          const api = await ctx.api();
          const d = await resolveDevice(api, name as string, await ctx.tenant());
          await api.devices.sendInput({ deviceId: d.deviceId, events });
          if (ctx.out.format === 'json' || ctx.out.format === 'yaml') {
            printDoc(ctx.out, { deviceId: d.deviceId, events: events.length });
          } else {
            ctx.out.write(`sent ${kind} to ${d.displayName || d.deviceId}\n`);
          }
        }),
      ),
    [
      'cphone devices input "phone 1" tap 360 640',
      'cphone devices input "phone 1" swipe 360 1000 360 300 --duration 200',
      'cphone devices input "phone 1" key HOME',
      'cphone devices input "phone 1" text "hello world"',
    ],
  );
}
