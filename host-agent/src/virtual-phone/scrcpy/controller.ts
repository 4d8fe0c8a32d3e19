import type { ServiceSocket } from '../adb/service-socket.js';
import type { AndroidDevice } from '../android/android-device.js';
import type { Rotation } from '../android/display.js';
import { KEYCODE } from '../android/keyboard.js';
import { ByteReader } from '../byte-reader.js';
import { type ControlMessage, controlProtocolFor, readControlMessage } from './control-decoder.js';
import type { ScreenCapture } from './screen-capture.js';

const DEVICE_MESSAGE_CLIPBOARD = 0;
const DEVICE_MESSAGE_ACK_CLIPBOARD = 1;
/** DeviceMessageWriter: a message is at most 256 KiB, so the text is cut at a UTF-8 boundary. */
const CLIPBOARD_TEXT_MAX_BYTES = (1 << 18) - 5;
const COPY_KEY_COPY = 1;
const COPY_KEY_CUT = 2;
/** ControlMessage.SEQUENCE_INVALID: the client wants no acknowledgement. */
const SEQUENCE_INVALID = 0n;

/** The longest prefix of `bytes` that ends on a character boundary and fits in `max`. */
function utf8Truncate(bytes: Buffer, max: number): Buffer {
  if (bytes.byteLength <= max) return bytes;
  let end = max;
  // Step back over continuation bytes (10xxxxxx) to the start of the cut character.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

export function clipboardDeviceMessage(text: string): Uint8Array {
  const body = utf8Truncate(Buffer.from(text, 'utf8'), CLIPBOARD_TEXT_MAX_BYTES);
  const head = Buffer.alloc(5);
  head.writeUInt8(DEVICE_MESSAGE_CLIPBOARD, 0);
  head.writeUInt32BE(body.byteLength, 1);
  return Buffer.concat([head, body]);
}

export function ackClipboardDeviceMessage(sequence: bigint): Uint8Array {
  const out = Buffer.alloc(9);
  out.writeUInt8(DEVICE_MESSAGE_ACK_CLIPBOARD, 0);
  out.writeBigUInt64BE(sequence, 1);
  return out;
}

export interface ControllerOptions {
  clipboardAutosync: boolean;
  /** The server's console (Ln.w). */
  log(level: 'WARN' | 'INFO', message: string): Promise<void>;
}

/**
 * scrcpy's Controller on the control socket: every message is recorded, then acted on as the
 * real server acts: input is injected (positions mapped through the current capture, events for
 * a stale video size ignored), clipboard set (acknowledged when sequenced, pasted on request) and
 * read (answered only without autosync: with it, the change notification is the answer), the
 * device rotated, the video reset. With autosync the phone's own clipboard changes are pushed.
 */
export class ScrcpyController {
  readonly #device: AndroidDevice;
  readonly #socket: ServiceSocket;
  readonly #capture: ScreenCapture | undefined;
  readonly #options: ControllerOptions;
  /** Device messages leave in order, one socket write at a time. */
  #sending: Promise<void> = Promise.resolve();

  constructor(
    device: AndroidDevice,
    socket: ServiceSocket,
    capture: ScreenCapture | undefined,
    options: ControllerOptions,
  ) {
    this.#device = device;
    this.#socket = socket;
    this.#capture = capture;
    this.#options = options;
  }

  /** Serves until the client closes the socket. */
  async run(version: string): Promise<void> {
    const onClipboard = (text: string, source: string): void => {
      if (source !== 'scrcpy') this.#send(clipboardDeviceMessage(text));
    };
    if (this.#options.clipboardAutosync) this.#device.clipboard.on('change', onClipboard);
    try {
      const reader = new ByteReader(this.#socket);
      const protocol = controlProtocolFor(version);
      for (
        let message = await readControlMessage(reader, protocol);
        message;
        message = await readControlMessage(reader, protocol)
      ) {
        this.#device.events.recordControl(message);
        await this.#handle(message);
      }
    } finally {
      this.#device.clipboard.off('change', onClipboard);
      await this.#sending;
    }
  }

  async #handle(message: ControlMessage): Promise<void> {
    const { input, clipboard, display } = this.#device;
    switch (message.type) {
      case 'inject-keycode':
        input.injectKey(message.action, message.keyCode, message.metaState, message.repeat);
        return;
      case 'inject-text':
        for (const unit of input.injectText(message.text)) {
          const code = unit.charCodeAt(0).toString(16).padStart(4, '0');
          await this.#options.log('WARN', `Could not inject char u+${code}`);
        }
        return;
      case 'inject-touch': {
        const point = this.#map(message.x, message.y, message.screenWidth, message.screenHeight);
        if (point) {
          input.injectTouch(
            message.action,
            // Java reads the u64 as a signed long: -1 is the mouse, -2 the generic finger.
            BigInt.asIntN(64, message.pointerId),
            point,
            message.pressure,
            message.actionButton,
            message.buttons,
          );
        }
        return;
      }
      case 'inject-scroll': {
        const point = this.#map(message.x, message.y, message.screenWidth, message.screenHeight);
        if (point) input.injectScroll(point, message.scrollX, message.scrollY, message.buttons);
        return;
      }
      case 'back-or-screen-on':
        // The screen is always on here, so this is BACK with the client's action.
        input.back(message.action);
        return;
      case 'get-clipboard':
        if (message.copyKey === COPY_KEY_COPY) input.pressKey(KEYCODE.COPY);
        if (message.copyKey === COPY_KEY_CUT) input.pressKey(KEYCODE.CUT);
        if (!this.#options.clipboardAutosync && clipboard.text !== undefined) {
          this.#send(clipboardDeviceMessage(clipboard.text));
        }
        return;
      case 'set-clipboard':
        clipboard.set(message.text, 'scrcpy');
        await this.#options.log('INFO', 'Device clipboard set');
        if (message.paste) input.pressKey(KEYCODE.PASTE);
        if (message.sequence !== SEQUENCE_INVALID) this.#send(ackClipboardDeviceMessage(message.sequence));
        return;
      case 'rotate-device': {
        const next = ((display.rotation & 1) ^ 1) as Rotation;
        await this.#options.log(
          'INFO',
          `Device rotation requested: ${next === 0 ? 'portrait' : 'landscape'}`,
        );
        display.setRotation(next);
        return;
      }
      case 'reset-video':
        if (this.#capture) {
          await this.#options.log('INFO', 'Video capture reset');
          this.#capture.invalidate();
        }
        return;
      default:
      // Panels, display power, apps, keyboard settings: recorded, nothing to emulate.
    }
  }

  #map(x: number, y: number, width: number, height: number): { x: number; y: number } | undefined {
    return this.#capture ? this.#capture.map(x, y, width, height) : { x, y };
  }

  #send(message: Uint8Array): void {
    this.#sending = this.#sending
      .then(() => (this.#socket.isClosed ? undefined : this.#socket.write(message)))
      .catch(() => {});
  }
}
