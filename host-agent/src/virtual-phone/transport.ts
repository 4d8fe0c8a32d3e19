/**
 * The byte pipe the ADB device side runs over. Protocol code depends only on this, never on a
 * socket, so the same phone can serve TCP, an in-memory pair in tests, or any other carrier.
 */
export interface ByteTransport {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  /** Tears the carrier down at once (a reboot drops every connection like a real adbd does). */
  destroy(): void;
}
