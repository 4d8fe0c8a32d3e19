#!/usr/bin/env bash
# Debian packages the tests use: Debian's adb (interop with the virtual phone), podman and friends
# (a real Docker Engine API), chromium (a real WebRTC peer for the sfu, driven by playwright-core),
# aapt and ffmpeg (only to regenerate fixtures). Idempotent.
set -euo pipefail
packages=(adb podman runc fuse-overlayfs slirp4netns uidmap busybox-static iptables curl chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup-system: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq -o DPkg::Lock::Timeout=300
  apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null
fi
echo "setup-system: ok" >&2
