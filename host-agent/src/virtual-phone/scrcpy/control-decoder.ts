import * as ScrcpyVersions from '@yume-chan/scrcpy';
import {
  ScrcpyBackOrScreenOnControlMessage,
  ScrcpyControlMessageType,
  ScrcpyInjectKeyCodeControlMessage,
  ScrcpyInjectScrollControlMessage,
  ScrcpyInjectTextControlMessage,
  ScrcpyInjectTouchControlMessage,
  ScrcpyOptions3_3_1,
  ScrcpySetClipboardControlMessage,
  ScrcpySetDisplayPowerControlMessage,
} from '@yume-chan/scrcpy';
import { type AsyncExactReadable, ExactReadableEndedError } from '@yume-chan/struct';
import { type ByteReader, EndOfStreamError } from '../byte-reader.js';

/** A control message as the phone understood it; tests assert on these. */
export type ControlMessage =
  | { type: 'inject-keycode'; action: number; keyCode: number; repeat: number; metaState: number }
  | { type: 'inject-text'; text: string }
  | {
      type: 'inject-touch';
      action: number;
      pointerId: bigint;
      x: number;
      y: number;
      screenWidth: number;
      screenHeight: number;
      pressure: number;
      actionButton: number;
      buttons: number;
    }
  | {
      type: 'inject-scroll';
      x: number;
      y: number;
      screenWidth: number;
      screenHeight: number;
      scrollX: number;
      scrollY: number;
      buttons: number;
    }
  | { type: 'back-or-screen-on'; action: number }
  | { type: 'get-clipboard'; copyKey: number }
  | { type: 'set-clipboard'; sequence: bigint; paste: boolean; text: string }
  | { type: 'set-display-power'; on: boolean }
  | { type: 'start-app'; name: string }
  | {
      type:
        | 'expand-notification-panel'
        | 'expand-settings-panel'
        | 'collapse-panels'
        | 'rotate-device'
        | 'open-hard-keyboard-settings'
        | 'reset-video';
    };

export class UnsupportedControlMessageError extends Error {
  override readonly name = 'UnsupportedControlMessageError';
}

type OptionsClass = new (init: Record<string, never>) => { controlMessageTypes: readonly number[] };

/** How one scrcpy release encodes control messages. */
export interface ControlProtocol {
  /** Index = type byte on the wire. */
  types: readonly number[];
  /** Since 3.3.1 scroll amounts travel divided by 16 and the server multiplies them back. */
  scrollScale: number;
}

function atLeast(version: string, minimum: readonly number[]): boolean {
  const parts = version.split(/[.-]/).map((p) => Number.parseInt(p, 10) || 0);
  for (const [i, want] of minimum.entries()) {
    const have = parts[i] ?? 0;
    if (have !== want) return have > want;
  }
  return true;
}

/**
 * Message type ids moved between scrcpy releases; @yume-chan/scrcpy knows each release's table
 * (3.3.1's for a version it does not know). The server only accepts its own version
 * (app-process.ts), so it always decodes with 3.3.3's.
 */
export function controlProtocolFor(version: string): ControlProtocol {
  const exported = (ScrcpyVersions as unknown as Record<string, OptionsClass | undefined>)[
    `ScrcpyOptions${version.replace(/[.-]/g, '_')}`
  ];
  const known = typeof exported === 'function';
  const Options = known ? exported : (ScrcpyOptions3_3_1 as unknown as OptionsClass);
  return {
    types: new Options({}).controlMessageTypes,
    scrollScale: !known || atLeast(version, [3, 3, 1]) ? 16 : 1,
  };
}

/** Lets @yume-chan/struct deserialize straight from an ADB stream. */
function structReader(reader: ByteReader): AsyncExactReadable {
  let position = 0;
  return {
    get position() {
      return position;
    },
    async readExactly(length: number) {
      try {
        const bytes = await reader.readExactly(length);
        position += length;
        return bytes;
      } catch (error) {
        if (error instanceof EndOfStreamError) throw new ExactReadableEndedError();
        throw error;
      }
    },
  };
}

/**
 * Reads the next control message, or undefined when the client closed the socket between messages.
 * Layouts are @yume-chan/scrcpy's (the ones of scrcpy 2.0 and later); GET_CLIPBOARD and START_APP
 * are read by hand because the package exports no struct for them.
 */
export async function readControlMessage(
  reader: ByteReader,
  protocol: ControlProtocol,
): Promise<ControlMessage | undefined> {
  const { types } = protocol;
  const first = await reader.readUpTo(1);
  if (!first || first.byteLength === 0) return undefined;
  const typeId = first[0]!;
  reader.unread(first);
  const source = structReader(reader);
  const T = ScrcpyControlMessageType;
  switch (types[typeId]) {
    case T.InjectKeyCode: {
      const m = await ScrcpyInjectKeyCodeControlMessage.deserialize(source);
      return {
        type: 'inject-keycode',
        action: m.action,
        keyCode: m.keyCode,
        repeat: m.repeat,
        metaState: m.metaState,
      };
    }
    case T.InjectText:
      return { type: 'inject-text', text: (await ScrcpyInjectTextControlMessage.deserialize(source)).text };
    case T.InjectTouch: {
      const m = await ScrcpyInjectTouchControlMessage.deserialize(source);
      return {
        type: 'inject-touch',
        action: m.action,
        pointerId: m.pointerId,
        x: m.pointerX,
        y: m.pointerY,
        screenWidth: m.videoWidth,
        screenHeight: m.videoHeight,
        pressure: m.pressure,
        actionButton: m.actionButton,
        buttons: m.buttons,
      };
    }
    case T.InjectScroll: {
      const m = await ScrcpyInjectScrollControlMessage.deserialize(source);
      return {
        type: 'inject-scroll',
        x: m.pointerX,
        y: m.pointerY,
        screenWidth: m.videoWidth,
        screenHeight: m.videoHeight,
        // The struct yields the wire fraction; the server scales it like ControlMessageReader does.
        scrollX: m.scrollX * protocol.scrollScale,
        scrollY: m.scrollY * protocol.scrollScale,
        buttons: m.buttons,
      };
    }
    case T.BackOrScreenOn:
      return {
        type: 'back-or-screen-on',
        action: (await ScrcpyBackOrScreenOnControlMessage.deserialize(source)).action,
      };
    case T.SetClipboard: {
      const m = await ScrcpySetClipboardControlMessage.deserialize(source);
      return { type: 'set-clipboard', sequence: m.sequence, paste: Boolean(m.paste), text: m.content };
    }
    case T.SetDisplayPower:
      return {
        type: 'set-display-power',
        on: (await ScrcpySetDisplayPowerControlMessage.deserialize(source)).mode !== 0,
      };
    case T.GetClipboard: {
      const bytes = await reader.readExactly(2); // type, copy_key
      return { type: 'get-clipboard', copyKey: bytes[1]! };
    }
    case T.StartApp: {
      const head = await reader.readExactly(2); // type, name length u8
      const name = await reader.readExactly(head[1]!);
      return { type: 'start-app', name: new TextDecoder().decode(name) };
    }
    case T.ExpandNotificationPanel:
    case T.ExpandSettingPanel:
    case T.CollapseNotificationPanel:
    case T.RotateDevice:
    case T.OpenHardKeyboardSettings:
    case T.ResetVideo: {
      await reader.readExactly(1);
      const names = {
        [T.ExpandNotificationPanel]: 'expand-notification-panel',
        [T.ExpandSettingPanel]: 'expand-settings-panel',
        [T.CollapseNotificationPanel]: 'collapse-panels',
        [T.RotateDevice]: 'rotate-device',
        [T.OpenHardKeyboardSettings]: 'open-hard-keyboard-settings',
        [T.ResetVideo]: 'reset-video',
      } as const;
      return { type: names[types[typeId] as keyof typeof names] };
    }
    default:
      // UHID messages and unknown ids: their length is unknown, so the stream cannot go on.
      throw new UnsupportedControlMessageError(`unsupported control message type ${typeId}`);
  }
}
