/**
 * The scrcpy server release the agent runs: the one @yume-chan/scrcpy 2.3's latest options speak
 * (ScrcpyOptionsLatest = 3.3.3). A server refuses a client of any other version.
 */
export const SCRCPY_SERVER_VERSION = '3.3.3';
/**
 * SHA-256 of the release's `scrcpy-server-v3.3.3`, as scrcpy publishes it with the release (its
 * install_release.sh and doc/build.md at tag v3.3.3 pin the same value).
 */
export const SCRCPY_SERVER_SHA256 = '7e70323ba7f259649dd4acce97ac4fefbae8102b2c6d91e2e7be613fd5354be0';
