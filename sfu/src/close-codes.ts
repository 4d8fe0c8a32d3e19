// Every way the sfu ends a viewer's signaling socket: one table, one code per cause. The close
// frame's reason is `${REASON}: ${message}` (cut to the 123 bytes a close frame holds); the code
// tells a player what to do, the message is for the person watching.

export const CloseCode = {
  /** The viewer left (`leave`). */
  NORMAL: 1000,
  /** The sfu is shutting down; another host may serve the phone later. */
  SHUTDOWN: 1001,
  /** A frame far over the signaling limit, not even read (ws's own code for it; no reason text). */
  TOO_BIG: 1009,
  /** A malformed, unknown or out-of-order signaling message, or a malformed input message. */
  BAD_MESSAGE: 4400,
  /** The token is invalid, expired, for another host or revoked before the join. */
  BAD_TOKEN: 4401,
  /** The session's rights do not allow what was asked (input on a VIEW session). */
  FORBIDDEN: 4403,
  /** The phone cannot be streamed from this host now (not running, not here). */
  DEVICE_GONE: 4404,
  /** No `join` came in time. */
  JOIN_TIMEOUT: 4408,
  /** Every seat of that kind on the phone is taken (viewers, or the controlling seat). */
  FULL: 4409,
  /** The session was revoked while open. */
  REVOKED: 4410,
  /** The phone was stopped or deleted. */
  DEVICE_STOPPED: 4411,
  /** The same session joined on another socket, which now has it. */
  REPLACED: 4412,
  /** This browser cannot receive the phone's codecs (H.264, Opus). */
  UNSUPPORTED: 4415,
  /** Something failed inside the sfu; the cause is logged, never sent. */
  INTERNAL: 4500,
  /** The media process serving the phone restarted: join again with the same token. */
  MEDIA_RESTART: 4503,
} as const;

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** The UPPER_SNAKE_CASE reason each code carries unless a caller names its own (revocations do). */
export const CLOSE_REASONS: Readonly<Record<CloseCode, string>> = {
  1000: 'LEFT',
  1001: 'SHUTDOWN',
  1009: 'MESSAGE_TOO_BIG',
  4400: 'BAD_MESSAGE',
  4401: 'BAD_TOKEN',
  4403: 'FORBIDDEN',
  4404: 'DEVICE_GONE',
  4408: 'JOIN_TIMEOUT',
  4409: 'FULL',
  4410: 'REVOKED',
  4411: 'DEVICE_STOPPED',
  4412: 'REPLACED',
  4415: 'UNSUPPORTED',
  4500: 'INTERNAL',
  4503: 'MEDIA_RESTART',
};

/** Why the sfu ends a socket or refuses a request: the code, the reason and a message fit to show. */
export class SignalClose extends Error {
  override readonly name = 'SignalClose';
  readonly reason: string;

  constructor(
    readonly code: CloseCode,
    message: string,
    reason?: string,
  ) {
    super(message);
    this.reason = reason ?? CLOSE_REASONS[code];
  }

  /** The close frame's reason text: at most 123 UTF-8 bytes, never a split character. */
  get frameReason(): string {
    return closeFrameReason(this.reason, this.message);
  }
}

/** `${reason}: ${message}` cut to the 123 bytes a WebSocket close frame allows. */
export function closeFrameReason(reason: string, message: string): string {
  let text = message ? `${reason}: ${message}` : reason;
  while (Buffer.byteLength(text, 'utf8') > 123) text = [...text].slice(0, -1).join('');
  return text;
}

/** A phone the feed cannot stream now (not running, not on this host): the message is shown to the viewer. */
export class DeviceUnavailableError extends Error {
  override readonly name = 'DeviceUnavailableError';
}
