#!/usr/bin/env bash
# Debian packages the tests use: Debian's adb (interop with the virtual phone), podman and friends
# (a real Docker Engine API), chromium (a real WebRTC peer for the sfu, driven by playwright-core)
# with a CJK font (the console's and player's Chinese text in screenshots; 5 MB), aapt and ffmpeg (only to regenerate fixtures), coturn (tests start their own turnserver on
# loopback), systemd (systemd-analyze checks the host agent's units offline; nothing is started). Idempotent.
set -euo pipefail
packages=(adb podman runc fuse-overlayfs slirp4netns uidmap busybox-static iptables curl chromium fonts-wqy-microhei coturn systemd)

# coturn's own service must never run here: it would listen on every interface with the package's
# config. /etc/default/coturn keeps only the sysv script off; Debian's systemd unit ignores that file
# and is enabled on install, so the unit is masked before the package arrives (its postinst then
# cannot start it) and stays masked.
mkdir -p /etc/systemd/system
[[ -e /etc/systemd/system/coturn.service || -L /etc/systemd/system/coturn.service ]] || ln -s /dev/null /etc/systemd/system/coturn.service
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
if [[ -f /etc/default/coturn ]] && grep -Eq '^[[:space:]]*TURNSERVER_ENABLED=1' /etc/default/coturn; then
  echo "setup-system: turning off coturn's sysv service (TURNSERVER_ENABLED) in /etc/default/coturn" >&2
  sed -i -E 's/^[[:space:]]*TURNSERVER_ENABLED=1/#TURNSERVER_ENABLED=1/' /etc/default/coturn
fi
if [[ -d /run/systemd/system ]] && systemctl is-active --quiet coturn; then
  systemctl stop coturn
fi
echo "setup-system: ok" >&2
