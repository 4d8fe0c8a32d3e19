#!/usr/bin/env bash
# Builds fixtures/sound.opus: what the virtual phone plays, about 3 s of espeak-ng speech over a
# quiet 440 Hz tone (so the level never drops to silence), encoded as scrcpy's server encodes a
# phone's sound: Opus, 48 kHz stereo, 20 ms packets, no DTX. Ogg is only the container here: the
# phone reads the OpusHead (its config packet) and the audio packets out of it and loops them.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
out="$here/fixtures/sound.opus"
command -v ffmpeg >/dev/null || apt-get install -y ffmpeg
command -v espeak-ng >/dev/null || apt-get install -y espeak-ng
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
espeak-ng -v en-us -s 150 -w "$work/speech.wav" "cphone virtual phone. Sound check: one, two, three."
ffmpeg -hide_banner -loglevel error -y \
  -i "$work/speech.wav" -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=3" \
  -filter_complex "[0:a]aresample=48000,apad=whole_dur=3[s];[1:a]volume=0.05[t];[s][t]amix=inputs=2:duration=first:normalize=0,atrim=0:3" \
  -ac 2 -ar 48000 -c:a libopus -b:a 48k -frame_duration 20 -application audio -vbr on \
  -map_metadata -1 -fflags +bitexact -flags:a +bitexact -f ogg "$out"
ls -l "$out"
