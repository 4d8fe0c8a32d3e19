#!/usr/bin/env bash
# A local stand-in for the images' pinned base (docker.io/library/node:20-bookworm-slim@sha256:…)
# where no container registry is reachable: Debian 12 (bookworm, minbase, from Debian's packages by
# debootstrap) plus this machine's Node 20 and npm, laid out as the official image lays them out
# (/usr/local/bin/node, npm in /usr/local/lib/node_modules, user `node` 1000:1000). Imported into
# podman as localhost/cphone/node-standin:<hash>; the tag is a hash of everything that goes in, so a
# rebuild happens exactly when an input changes (a cold build takes 2-3 minutes, mostly debootstrap).
#   standin-base.sh          build and import if missing; prints the image reference
#   standin-base.sh --ref    print the image reference only
#   CPHONE_DEBIAN_MIRROR     Debian mirror for debootstrap (default http://deb.debian.org/debian)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mirror="${CPHONE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
node_bin="$(readlink -f "$(command -v node)")"
npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
log() { echo "standin-base: $*" >&2; }

hash="$( { cat "$here/standin-base.sh"; echo "$mirror"; "$node_bin" -p 'process.version + process.arch';
  sha256sum "$node_bin" | cut -d' ' -f1; cat "$npm_dir/package.json"; } | sha256sum | cut -c1-12)"
ref="localhost/cphone/node-standin:$hash"
if [[ "${1:-}" == "--ref" ]]; then echo "$ref"; exit 0; fi
if podman image exists "$ref"; then echo "$ref"; exit 0; fi

if [[ "$("$node_bin" -p 'process.versions.node.split(".")[0]')" != 20 ]]; then
  log "this machine's node is $("$node_bin" -v); the pinned base is Node 20"; exit 1
fi
if ! command -v debootstrap >/dev/null; then
  log "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=300 debootstrap >&2
fi

work="$(mktemp -d)"
rootfs="$work/rootfs"
cleanup() {
  # debootstrap mounts /proc and /sys inside the tree while it runs: unmount before removing.
  grep -o " $rootfs/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

log "debootstrap bookworm (minbase) from $mirror"
debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
# What the slim images leave out: apt's lists and caches, documentation, manuals, other locales.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +
rm -rf "${rootfs:?}"/proc/* "${rootfs:?}"/sys/* "${rootfs:?}"/dev/*

# Node and npm where the official image has them. The machine's node links only libc, libstdc++
# and libgcc, which minbase holds; check rather than assume.
install -D -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
mkdir -p "$rootfs/usr/local/lib/node_modules"
cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
chroot "$rootfs" /usr/local/bin/node -e 'process.exit(0)' \
  || { log "node does not run inside the Debian tree (a library missing?)"; exit 1; }
chroot "$rootfs" groupadd --gid 1000 node
chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node

tar --numeric-owner -C "$rootfs" -c . | podman import \
  --change 'ENV NODE_VERSION='"$("$node_bin" -p 'process.versions.node')" \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["node"]' \
  --change "LABEL io.cphone.standin-base=$hash" - "$ref" >/dev/null
# Older stand-ins are dead weight (~200 MB each); ones still used by an image or container stay.
podman images --format '{{.Repository}}:{{.Tag}}' localhost/cphone/node-standin | grep -vx "$ref" \
  | xargs -r podman rmi >/dev/null 2>&1 || true
echo "$ref"
