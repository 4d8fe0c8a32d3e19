// Where the picture sits in its box (object-fit: contain) and a pointer's place in the frame.

export interface Rect {
  readonly left: number;
  readonly top: number;
  readonly width: number;
  readonly height: number;
}

/** The rectangle a `width` x `height` picture fills when fitted, aspect kept, centred in `box`. */
export function fitRect(box: Rect, width: number, height: number): Rect {
  if (width <= 0 || height <= 0 || box.width <= 0 || box.height <= 0) return { ...box, width: 0, height: 0 };
  const scale = Math.min(box.width / width, box.height / height);
  const w = width * scale;
  const h = height * scale;
  return { left: box.left + (box.width - w) / 2, top: box.top + (box.height - h) / 2, width: w, height: h };
}

/**
 * A point on the page in frame pixels of a `width` x `height` frame shown in `shown`; undefined
 * when it falls outside the picture (on the letterbox) unless `clamp`.
 */
export function toFrame(
  shown: Rect,
  width: number,
  height: number,
  clientX: number,
  clientY: number,
  clamp = false,
): { x: number; y: number } | undefined {
  if (shown.width <= 0 || shown.height <= 0) return undefined;
  let x = ((clientX - shown.left) / shown.width) * width;
  let y = ((clientY - shown.top) / shown.height) * height;
  const inside = x >= 0 && y >= 0 && x <= width && y <= height;
  if (!inside && !clamp) return undefined;
  x = Math.min(Math.max(x, 0), width);
  y = Math.min(Math.max(y, 0), height);
  return { x: Math.round(x * 100) / 100, y: Math.round(y * 100) / 100 };
}
