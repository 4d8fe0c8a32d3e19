#!/bin/sh
# Entrypoint of the cphone stand-in image. It mimics Redroid's interface: the container command is
# the same list of `androidboot.*` / `ro.*` arguments the docker runtime gives a real Redroid image,
# so the lifecycle tests exercise the exact create call production makes.
#
# If a virtual-phone bundle is mounted at /opt/cphone/virtual-phone.mjs (an esbuild bundle of
# host-agent/src/runtime/standin-phone.ts), it becomes the phone's adbd on :5555, shaped by the boot
# arguments; otherwise a plain TCP listener keeps :5555 answering so lifecycle checks still have a
# port to probe.
mkdir -p /data
echo "stand-in boot: $*"
if [ -f /opt/cphone/virtual-phone.mjs ]; then
  exec /usr/bin/node /opt/cphone/virtual-phone.mjs "$@"
fi
exec /bin/busybox nc -ll -p 5555 -e /bin/cat
