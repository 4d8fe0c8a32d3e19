#!/usr/bin/env bash
# Builds the cphone stand-in image (busybox + node + node's shared libraries) and imports it into
# podman as localhost/cphone-standin:<hash>. No registry is reachable on CI machines, so the image
# is assembled from the host's own binaries. The tag is a hash of everything that goes in, so a
# rebuild happens exactly when an input changes.
#   build.sh          build and import if missing; prints the image reference
#   build.sh --ref    print the image reference only
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
node_bin="$(readlink -f "$(command -v node)")"
busybox_bin="$(command -v busybox)"

hash="$( { cat "$here/build.sh" "$here/init.sh"; "$node_bin" -p 'process.version + process.arch';
  sha256sum "$busybox_bin" | cut -d' ' -f1; } | sha256sum | cut -c1-12)"
ref="localhost/cphone-standin:$hash"
if [[ "${1:-}" == "--ref" ]]; then echo "$ref"; exit 0; fi

if podman image exists "$ref"; then echo "$ref"; exit 0; fi
if ! file "$busybox_bin" | grep -q 'statically linked'; then
  echo "build.sh: $busybox_bin is not static; install busybox-static" >&2; exit 1
fi

rootfs="$(mktemp -d)"
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs"/{bin,usr/bin,data,tmp,opt/cphone,etc,proc,sys,dev}
chmod 1777 "$rootfs/tmp"
cp "$busybox_bin" "$rootfs/bin/busybox"
for applet in sh cat echo ls mkdir rm sleep nc hostname ps kill test; do ln -s busybox "$rootfs/bin/$applet"; done
cp "$node_bin" "$rootfs/usr/bin/node"
# node's shared libraries, at the same paths the dynamic loader looks for them on the host.
ldd "$node_bin" | grep -oE '/[^ ]+' | while read -r lib; do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
echo 'root:x:0:' > "$rootfs/etc/group"
install -m 0755 "$here/init.sh" "$rootfs/init"

tar -C "$rootfs" -c . | podman import \
  --change 'ENTRYPOINT ["/init"]' --change 'CMD []' --change 'EXPOSE 5555/tcp' \
  --change "LABEL io.cphone.standin-hash=$hash" - "$ref" >/dev/null
# Older builds are dead weight (~100 MB each); ones still used by a container stay.
podman images --format '{{.Repository}}:{{.Tag}}' localhost/cphone-standin | grep -vx "$ref" \
  | xargs -r podman rmi >/dev/null 2>&1 || true
echo "$ref"
