/** What a service (shell, sync, scrcpy socket …) sees of one ADB stream. */
export interface ByteSource {
  /** The next chunk, or undefined once the stream has ended. */
  read(): Promise<Uint8Array | undefined>;
}

export interface ServiceSocket extends ByteSource {
  readonly service: string;
  /** Resolves once the data has been handed to the carrier; waits for the host's OKAY between packets. */
  write(data: Uint8Array): Promise<void>;
  /** Flushes queued writes, then sends CLSE. */
  close(): Promise<void>;
  readonly isClosed: boolean;
  /** Aborted when either side closes the stream. */
  readonly signal: AbortSignal;
}

export class StreamClosedError extends Error {
  override readonly name = 'StreamClosedError';
}
