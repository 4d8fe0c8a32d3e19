// Just enough H.264 for packetizing what scrcpy sends: Annex-B access units into NAL units.

export const NAL_IDR = 5;
export const NAL_SPS = 7;
export const NAL_PPS = 8;
export const NAL_AUD = 9;

/**
 * The NAL units of an Annex-B buffer, without their start codes (3 or 4 bytes) and without the
 * zero bytes a stream may put before the next start code (trailing_zero_8bits).
 */
export function splitAnnexB(data: Uint8Array): Uint8Array[] {
  const units: Uint8Array[] = [];
  let start = -1;
  const n = data.byteLength;
  let i = 0;
  while (i + 2 < n) {
    if (data[i + 2]! > 1) {
      i += 3;
    } else if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      if (start >= 0) units.push(trimZeros(data, start, i));
      start = i + 3;
      i += 3;
    } else {
      i++;
    }
  }
  if (start >= 0 && start < n) units.push(data.subarray(start, n));
  return units.filter((unit) => unit.byteLength > 0);
}

function trimZeros(data: Uint8Array, start: number, end: number): Uint8Array {
  let last = end;
  while (last > start && data[last - 1] === 0) last--;
  return data.subarray(start, last);
}

export const nalType = (nal: Uint8Array): number => (nal[0] ?? 0) & 0x1f;
