import { NAL_PPS, NAL_SPS, nalType } from '../h264.js';

const STAP_A = 24;
const FU_A = 28;

/**
 * RFC 6184 packetization-mode 1 payloads for one access unit (NAL units without start codes):
 * a NAL unit that fits is sent alone (5.6), a larger one in FU-A fragments (5.8), and several
 * small ones (the SPS and PPS sent before an IDR) aggregated in one STAP-A (5.7.1). Hand-written:
 * the packages on npm that know RFC 6184 only depacketize, and this is a few dozen lines.
 */
export function h264Payloads(nals: readonly Uint8Array[], maxPayload: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const nal of nals) {
    if (nal.byteLength <= maxPayload) {
      out.push(nal);
      continue;
    }
    const indicator = (nal[0]! & 0xe0) | FU_A;
    const type = nal[0]! & 0x1f;
    const chunk = maxPayload - 2;
    for (let offset = 1; offset < nal.byteLength; offset += chunk) {
      const end = Math.min(offset + chunk, nal.byteLength);
      const fragment = new Uint8Array(2 + end - offset);
      fragment[0] = indicator;
      fragment[1] = (offset === 1 ? 0x80 : 0) | (end === nal.byteLength ? 0x40 : 0) | type;
      fragment.set(nal.subarray(offset, end), 2);
      out.push(fragment);
    }
  }
  return out;
}

/** One STAP-A holding `nals`, or undefined when they do not fit in `maxPayload`. */
export function stapA(nals: readonly Uint8Array[], maxPayload: number): Uint8Array | undefined {
  const size = 1 + nals.reduce((sum, nal) => sum + 2 + nal.byteLength, 0);
  if (size > maxPayload) return undefined;
  const out = new Uint8Array(size);
  // F is the OR of the units' F bits, NRI their highest NRI.
  let f = 0;
  let nri = 0;
  let offset = 1;
  for (const nal of nals) {
    f |= nal[0]! & 0x80;
    nri = Math.max(nri, nal[0]! & 0x60);
    out[offset] = nal.byteLength >> 8;
    out[offset + 1] = nal.byteLength & 0xff;
    out.set(nal, offset + 2);
    offset += 2 + nal.byteLength;
  }
  out[0] = f | nri | STAP_A;
  return out;
}

/** The payloads of a key frame: its parameter sets first (one STAP-A when they fit), then its slices. */
export function keyFramePayloads(
  parameterSets: readonly Uint8Array[],
  nals: readonly Uint8Array[],
  maxPayload: number,
): Uint8Array[] {
  // In-band copies would arrive twice; the cached ones are the encoder's current ones.
  const slices = nals.filter((nal) => nalType(nal) !== NAL_SPS && nalType(nal) !== NAL_PPS);
  const aggregated = parameterSets.length > 1 ? stapA(parameterSets, maxPayload) : undefined;
  return [
    ...(aggregated ? [aggregated] : h264Payloads(parameterSets, maxPayload)),
    ...h264Payloads(slices, maxPayload),
  ];
}
