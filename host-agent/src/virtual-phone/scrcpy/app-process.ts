import { type Command, untilAborted } from '../android/shell/command.js';
import { chooseFixtureSize } from './h264-fixture.js';
import { ScrcpyServerProcess, type ServerConsole } from './scrcpy-server.js';
import { round8 } from './screen-capture.js';
import { parseServerOptions, SCRCPY_SERVER_VERSION, socketName } from './server-options.js';

const SCRCPY_MAIN_CLASS = 'com.genymobile.scrcpy.Server';

/**
 * `app_process`: only scrcpy's server is known. Like the real one it needs its jar on CLASSPATH,
 * and it keeps the shell open while it serves.
 */
export const appProcess: Command = async ({ argv, env, device, stdout, stderr, signal }) => {
  const mainIndex = argv.findIndex((arg) => arg.includes('.'));
  const mainClass = argv[mainIndex];
  const classpath = env['CLASSPATH'];
  if (mainClass !== SCRCPY_MAIN_CLASS || !classpath || device.fs.stat(classpath)?.type !== 'file') {
    await stderr(`Error: Could not find or load main class ${mainClass ?? ''}\n`);
    return 1;
  }
  const args = argv.slice(mainIndex + 1);
  // Options.parse, before anything else: the server only speaks its own protocol version. Its
  // exception reaches Server.main, which logs it with the stack trace and exits with status 1.
  const clientVersion = args[0];
  if (clientVersion !== SCRCPY_SERVER_VERSION) {
    const message =
      clientVersion === undefined
        ? 'Missing client version'
        : `The server version (${SCRCPY_SERVER_VERSION}) does not match the client (${clientVersion})`;
    await stderr(
      `[server] ERROR: ${message}\njava.lang.IllegalArgumentException: ${message}\n` +
        '\tat com.genymobile.scrcpy.Options.parse(Options.java:300)\n' +
        '\tat com.genymobile.scrcpy.Server.internalMain(Server.java:234)\n' +
        '\tat com.genymobile.scrcpy.Server.main(Server.java:215)\n',
    );
    return 1;
  }
  const options = parseServerOptions(args);
  const console: ServerConsole = async (level, message) => {
    const line = `[server] ${level}: ${message}\n`;
    await (level === 'INFO' ? stdout(line) : stderr(line)).catch(() => {});
  };
  await console(
    'INFO',
    `Device: [${device.identity.manufacturer}] cphone ${device.identity.model} (Android ${device.identity.release})`,
  );
  if (options.listing) {
    if (options.listing === 'list_encoders') {
      await console(
        'INFO',
        'List of video encoders:\n    --video-codec=h264 --video-encoder=c2.android.avc.encoder\n' +
          'List of audio encoders:\n    --audio-codec=opus --audio-encoder=c2.android.opus.encoder',
      );
    } else if (options.listing === 'list_displays') {
      const { width, height } = device.display.logicalSize;
      await console('INFO', `List of displays:\n    --display-id=0    (${width}x${height})`);
    }
    return 0;
  }
  if (options.videoCodec !== 'h264') {
    await console('ERROR', `Could not find video encoder for ${options.videoCodec}`);
    return 1;
  }
  if (!options.tunnelForward) {
    await console('ERROR', 'only tunnel_forward=true is supported by the virtual phone');
    return 1;
  }
  if (options.video) {
    // Fails here, not in the encoder thread, when no recording exists for the orientation.
    chooseFixtureSize(round8(device.display.logicalSize), device.videoFixturesDir);
  }
  const name = socketName(options.scid);
  const server = new ScrcpyServerProcess(device, options, console);
  device.abstractSockets.set(name, server);
  try {
    await Promise.race([untilAborted(signal), untilAborted(server.stopped), untilAborted(device.lifetime)]);
  } finally {
    server.stop();
    if (device.abstractSockets.get(name) === server) device.abstractSockets.delete(name);
  }
  return 0;
};
