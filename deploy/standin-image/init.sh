#!/bin/sh
# Entrypoint of the cphone stand-in image. It mimics Redroid's interface: the container command is
# the same list of `androidboot.*` / `ro.*` arguments the docker runtime gives a real Redroid image,
# so the lifecycle tests exercise the exact create call production makes.
#
# If a virtual-phone bundle is mounted at /opt/cphone/virtual-phone.mjs (an esbuild bundle of
# host-agent/src/runtime/standin-phone.ts), it becomes the phone's adbd on :5555, shaped by the boot
# arguments; otherwise a plain TCP listener keeps :5555 answering so lifecycle checks still have a
# port to probe.
#
# Like Redroid's /init, this script is PID 1 (the runtime adds no init in front of it, as no
# Redroid deployment does): it handles SIGTERM itself, so a stop ends at once instead of waiting
# out the kill timeout, and it reaps its child.
mkdir -p /data
echo "stand-in boot: $*"
if [ -f /opt/cphone/virtual-phone.mjs ]; then
  /usr/bin/node /opt/cphone/virtual-phone.mjs "$@" &
else
  /bin/busybox nc -ll -p 5555 -e /bin/cat &
fi
child=$!
trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 0' TERM INT
wait "$child"
