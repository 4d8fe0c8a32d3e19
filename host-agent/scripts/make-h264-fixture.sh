#!/usr/bin/env bash
# Builds the virtual phone's screen recordings, fixtures/screen-<W>x<H>.h264: 2 s of a moving test
# pattern with the frame number drawn on it, at 30 fps, H.264 Constrained Baseline (profile-level-id
# 42c01f: what every browser decodes) in Annex-B. Each size the tests stream has a portrait and a
# landscape recording, so a rotation can switch between them.
#
# x264 repeats SPS/PPS before each IDR; the phone keeps only the first pair, as its config packet,
# because MediaCodec (without prepend-sps-pps-to-idr-frames, which scrcpy does not set) emits them
# once per encoder start. An IDR every 15 frames gives the phone several places to jump to when it
# is asked for a key frame.
#
# Usage: make-h264-fixture.sh [WxH ...]   (default: the committed sizes)
#        BITRATE=2M OUT_DIR=/tmp/x make-h264-fixture.sh 720x1280 1280x720   (a heavier recording, e.g.
#        to measure ingest at a production bitrate; the virtual phone's `videoFixturesDir` reads it)
# The virtual phone reads the size from the file name and the frame rate from FIXTURE_FPS in
# src/virtual-phone/scrcpy/h264-fixture.ts: keep that number in step with FPS here.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
out_dir="${OUT_DIR:-$here/fixtures}"
sizes=("$@")
if ((${#sizes[@]} == 0)); then sizes=(720x1280 1280x720 360x640 640x360); fi
FPS=30
font=/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf
command -v ffmpeg >/dev/null || apt-get install -y ffmpeg
[ -f "$font" ] || apt-get install -y fonts-dejavu-core
mkdir -p "$out_dir"
for size in "${sizes[@]}"; do
  width="${size%x*}"
  height="${size#*x}"
  short=$((width < height ? width : height))
  # About 1/100 bit per pixel and frame: small files that still decode to a recognisable picture.
  bitrate="${BITRATE:-$((width * height * FPS / 100 / 1000))k}"
  out="$out_dir/screen-${width}x${height}.h264"
  ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=${width}x${height}:rate=${FPS}:duration=2" \
    -vf "drawtext=fontfile=${font}:text='%{n}':fontsize=$((short / 6)):fontcolor=white:box=1:boxcolor=black@0.6:x=$((short / 20)):y=$((short / 20))" \
    -c:v libx264 -profile:v baseline -level 3.1 -pix_fmt yuv420p -preset veryfast -tune zerolatency \
    -b:v "$bitrate" -maxrate "$bitrate" -bufsize "$bitrate" \
    -g 15 -keyint_min 15 -sc_threshold 0 -bf 0 \
    -x264-params "repeat-headers=1:aud=0:sliced-threads=0:threads=1" \
    -bsf:v h264_mp4toannexb -f h264 "$out"
  ls -l "$out"
done
