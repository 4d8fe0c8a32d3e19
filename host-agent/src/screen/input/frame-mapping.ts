export interface Size {
  readonly width: number;
  readonly height: number;
}

const portrait = (size: Size): boolean => size.height >= size.width;

/**
 * A point in the viewer's frame (what it decoded, `frame`) to the video the phone streams now
 * (`video`), which the server then maps to the display (its PositionMapper scales, and rotates
 * when the capture orientation is locked). The frame normally is the video; it differs when the
 * viewer scales, or still shows the orientation from before a rotation: then the point meant
 * something on a picture that no longer exists, and undefined says so (scrcpy's server drops such
 * events too).
 */
export function frameToVideo(
  x: number,
  y: number,
  frame: Size,
  video: Size,
): { x: number; y: number } | undefined {
  if (portrait(frame) !== portrait(video) && frame.width !== frame.height) return undefined;
  const clamp = (v: number, max: number) => Math.min(Math.max(Math.round(v), 0), max - 1);
  return {
    x: clamp((x * video.width) / frame.width, video.width),
    y: clamp((y * video.height) / frame.height, video.height),
  };
}
