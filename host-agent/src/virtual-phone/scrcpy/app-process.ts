import { type Command, untilAborted } from '../android/shell/command.js';
import { SCREEN_FIXTURE } from './h264-fixture.js';
import { ScrcpyServerProcess } from './scrcpy-server.js';
import { parseServerOptions, socketName } from './server-options.js';

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
  const options = parseServerOptions(argv.slice(mainIndex + 1));
  const { width, height } = SCREEN_FIXTURE;
  await stdout(
    `[server] INFO: Device: [${device.identity.manufacturer}] cphone ${device.identity.model} (Android ${device.identity.release})\n`,
  );
  if (options.listing) {
    if (options.listing === 'list_encoders') {
      await stdout(
        '[server] INFO: List of video encoders:\n    --video-codec=h264 --video-encoder=c2.android.avc.encoder\n',
      );
      await stdout('[server] INFO: List of audio encoders:\n');
    } else if (options.listing === 'list_displays') {
      await stdout(`[server] INFO: List of displays:\n    --display-id=0    (${width}x${height})\n`);
    }
    return 0;
  }
  if (options.videoCodec !== 'h264') {
    await stderr(`[server] ERROR: Could not find video encoder for ${options.videoCodec}\n`);
    return 1;
  }
  if (!options.tunnelForward) {
    await stderr('[server] ERROR: only tunnel_forward=true is supported by the virtual phone\n');
    return 1;
  }
  const name = socketName(options.scid);
  const server = new ScrcpyServerProcess(device, options);
  device.abstractSockets.set(name, server);
  try {
    await Promise.race([untilAborted(signal), untilAborted(server.stopped), untilAborted(device.lifetime)]);
  } finally {
    server.stop();
    if (device.abstractSockets.get(name) === server) device.abstractSockets.delete(name);
  }
  return 0;
};
