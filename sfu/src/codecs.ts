// The codecs a phone's room carries, and the RTP parameters of the feed's two producers. The H.264
// is the phone's own (passed through, never re-encoded), so the router offers exactly one H.264
// profile: Constrained Baseline 3.1, what the ingest asks MediaCodec for and every browser decodes.
// level-asymmetry-allowed lets a browser that prefers another level still take the stream.
import type { types } from 'mediasoup';

export const VIDEO_PAYLOAD_TYPE = 102;
export const AUDIO_PAYLOAD_TYPE = 111;
export const H264_PROFILE_LEVEL_ID = '42e01f';

const h264Parameters = {
  'packetization-mode': 1,
  'profile-level-id': H264_PROFILE_LEVEL_ID,
  'level-asymmetry-allowed': 1,
};

export const MEDIA_CODECS: types.RouterRtpCodecCapability[] = [
  { kind: 'video', mimeType: 'video/H264', clockRate: 90_000, parameters: h264Parameters },
  { kind: 'audio', mimeType: 'audio/opus', clockRate: 48_000, channels: 2 },
];

/**
 * The video producer's parameters: PLI and FIR make mediasoup ask the feed for key frames.
 * `maxBitrate` goes to every consumer's encoding, and mediasoup wants that much for each viewer:
 * its bandwidth estimator probes up to it (see SfuOptions.videoMaxBitrate).
 */
export function videoRtpParameters(ssrc: number, maxBitrate: number): types.RtpParameters {
  return {
    codecs: [
      {
        mimeType: 'video/H264',
        payloadType: VIDEO_PAYLOAD_TYPE,
        clockRate: 90_000,
        parameters: h264Parameters,
        rtcpFeedback: [
          { type: 'nack', parameter: 'pli' },
          { type: 'ccm', parameter: 'fir' },
        ],
      },
    ],
    encodings: [{ ssrc, maxBitrate }],
  };
}

export function audioRtpParameters(ssrc: number): types.RtpParameters {
  return {
    codecs: [
      {
        mimeType: 'audio/opus',
        payloadType: AUDIO_PAYLOAD_TYPE,
        clockRate: 48_000,
        channels: 2,
        parameters: { useinbandfec: 1, stereo: 1 },
      },
    ],
    encodings: [{ ssrc }],
  };
}
