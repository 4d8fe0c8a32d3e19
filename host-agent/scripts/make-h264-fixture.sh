#!/usr/bin/env bash
# Builds fixtures/screen-720x1280.h264: 4 s of a moving test pattern, 720x1280 at 30 fps, H.264
# baseline profile in Annex-B, an IDR every second with SPS/PPS repeated before each one (so a
# viewer joining mid-stream can start at the next key frame). The virtual phone loops it as its
# scrcpy video stream; dimensions and rate are mirrored in src/virtual-phone/scrcpy/h264-fixture.ts.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
out="$here/fixtures/screen-720x1280.h264"
command -v ffmpeg >/dev/null || apt-get install -y ffmpeg
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc2=size=720x1280:rate=30:duration=4" \
  -c:v libx264 -profile:v baseline -level 3.1 -pix_fmt yuv420p -preset veryfast -tune zerolatency \
  -b:v 300k -maxrate 300k -bufsize 300k \
  -g 30 -keyint_min 30 -sc_threshold 0 -bf 0 \
  -x264-params "repeat-headers=1:aud=0:sliced-threads=0:threads=1" \
  -bsf:v h264_mp4toannexb -f h264 "$out"
ls -l "$out"
