// Work for every stream, spread over time. The liveness pass pings every live stream once per
// interval; each ping is a protobuf encode, an HTTP/2 frame and a TLS record, so 10,000 of them in
// one loop would hold the event loop for a few hundred milliseconds, and every API call in flight
// (a command on its way to an agent, say) would wait that long. In slices, other work runs between.

/** Stops what is still to come of a spread; what already ran stays done. */
export type CancelSpread = () => void;

/**
 * Calls `each` for every item: a slice of `sliceSize` items at once, the slices spaced evenly over
 * `spanMs` (the first at once). With at most one slice everything runs now. Timers do not hold the
 * process open.
 */
export function spreadOver<T>(
  items: readonly T[],
  spanMs: number,
  each: (item: T) => void,
  sliceSize = 100,
): CancelSpread {
  const slices = Math.ceil(items.length / sliceSize);
  const run = (k: number) => {
    for (const item of items.slice(k * sliceSize, (k + 1) * sliceSize)) each(item);
  };
  if (slices <= 1) {
    run(0);
    return () => {};
  }
  const step = spanMs / slices;
  const timers: NodeJS.Timeout[] = [];
  run(0);
  for (let k = 1; k < slices; k++) {
    const timer = setTimeout(() => run(k), k * step);
    timer.unref();
    timers.push(timer);
  }
  return () => {
    for (const timer of timers) clearTimeout(timer);
  };
}
