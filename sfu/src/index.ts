// @cphone/sfu: the phone's screen and sound to browsers over WebRTC, and the viewers' input back.
export {
  type ClipboardInput,
  type GetClipboardInput,
  InputError,
  type KeyInput,
  MAX_INPUT_BYTES,
  type NavButton,
  type NavInput,
  type PhoneOutput,
  parseViewerInput,
  type RotateInput,
  type ScrollInput,
  type TextInput,
  type TouchInput,
  type ViewerInput,
} from './input.js';
