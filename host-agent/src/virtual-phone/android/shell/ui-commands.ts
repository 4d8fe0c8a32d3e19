import type { AndroidDevice } from '../android-device.js';
import type { Command, CommandContext } from './command.js';

function xmlAttribute(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/\n/g, '&#10;');
}

/** The window hierarchy as uiautomator prints it: one app, one focused EditText. */
export function windowDump(device: AndroidDevice): string {
  const { width, height } = device.display.logicalSize;
  const common =
    'content-desc="" checkable="false" checked="false" enabled="true" scrollable="false" password="false" selected="false"';
  const pkg = 'dev.cphone.notes';
  return (
    `<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation="${device.display.rotation}">` +
    `<node index="0" text="" resource-id="" class="android.widget.FrameLayout" package="${pkg}" ${common} clickable="false" focusable="false" focused="false" long-clickable="false" bounds="[0,0][${width},${height}]">` +
    `<node index="0" text="${xmlAttribute(device.focusedField.text)}" resource-id="${pkg}:id/field" class="android.widget.EditText" package="${pkg}" ${common} clickable="true" focusable="true" focused="true" long-clickable="true" bounds="[0,0][${width},${Math.round(height / 4)}]" />` +
    '</node></hierarchy>'
  );
}

/**
 * `uiautomator dump [--compressed] [file]`: how tests on real phones read what an app shows, here
 * the focused field's text (and the display rotation). `/dev/tty` prints the XML instead.
 */
const uiautomator: Command = async ({ argv, device, stdout, stderr }) => {
  if (argv[1] !== 'dump') {
    await stderr('Usage: uiautomator dump [--compressed] [file]\n');
    return 1;
  }
  const file = argv.slice(2).find((a) => !a.startsWith('-')) ?? '/sdcard/window_dump.xml';
  const xml = windowDump(device);
  if (file === '/dev/tty') await stdout(xml);
  else device.fs.write(file, new TextEncoder().encode(xml));
  // Android's own spelling.
  await stdout(`UI hierchary dumped to: ${file}\n`);
  return 0;
};

/**
 * `cmd clipboard get-text | set-text <text>`: the virtual phone's stand-in for an app copying
 * text (real Android has no such shell service; apps change the clipboard there).
 */
export async function clipboardService(ctx: CommandContext, args: string[]): Promise<number> {
  const [verb, ...rest] = args;
  if (verb === 'get-text') {
    const text = ctx.device.clipboard.text;
    await ctx.stdout(text === undefined ? '' : `${text}\n`);
    return 0;
  }
  if (verb === 'set-text' && rest.length > 0) {
    ctx.device.clipboard.set(rest.join(' '), 'phone');
    return 0;
  }
  await ctx.stderr('usage: cmd clipboard get-text | set-text <text>\n');
  return 1;
}

export const uiCommands: ReadonlyMap<string, Command> = new Map([['uiautomator', uiautomator]]);
