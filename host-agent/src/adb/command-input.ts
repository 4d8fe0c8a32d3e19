import { agentv1 } from '@cphone/proto';
import { AdbInvalidArgumentError } from './errors.js';
import type { InputAction } from './input.js';

/** Raised for input adb's `input` tool cannot express (key down/up alone, meta state). */
export class InputUnsupportedError extends Error {
  override readonly name = 'InputUnsupportedError';
}

/** Maps the wire's InputEvents onto `input` actions, refusing what `input` cannot do. */
export function inputActions(events: readonly agentv1.InputEvent[]): InputAction[] {
  return events.map((event, index): InputAction => {
    const { kind } = event;
    switch (kind.case) {
      case 'tap':
        return { kind: 'tap', x: kind.value.x, y: kind.value.y, durationMs: kind.value.durationMs };
      case 'swipe':
        return {
          kind: 'swipe',
          fromX: kind.value.fromX,
          fromY: kind.value.fromY,
          toX: kind.value.toX,
          toY: kind.value.toY,
          durationMs: kind.value.durationMs,
        };
      case 'key': {
        const { action, metaState, keycode } = kind.value;
        if (action === agentv1.KeyAction.DOWN || action === agentv1.KeyAction.UP) {
          throw new InputUnsupportedError(
            `events[${index}].key.action=${agentv1.KeyAction[action]}: adb input sends whole key presses only; use the stream's control channel`,
          );
        }
        if (metaState !== 0) {
          throw new InputUnsupportedError(
            `events[${index}].key.metaState=${metaState}: adb input cannot hold meta keys; use the stream's control channel`,
          );
        }
        return { kind: 'key', keycode };
      }
      case 'text':
        return { kind: 'text', text: kind.value.text };
      default:
        throw new AdbInvalidArgumentError(`events[${index}]`, kind.case ?? null, 'names no input kind');
    }
  });
}
