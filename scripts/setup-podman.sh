#!/usr/bin/env bash
# Makes a Docker Engine API available for the docker runtime's tests: podman's Docker-compatible
# service on a unix socket, plus the local stand-in image (no registry is reachable here).
# Idempotent: every step checks before it acts, so CI can call it on every run.
#   CPHONE_DOCKER_SOCKET   socket path (default /run/cphone-podman.sock)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
socket="${CPHONE_DOCKER_SOCKET:-/run/cphone-podman.sock}"
pidfile="${socket%.sock}.pid"
log() { echo "setup-podman: $*" >&2; }

# 1. Packages. Another apt run may hold the lock (machine provisioning): wait for it instead of failing.
packages=(podman runc fuse-overlayfs slirp4netns uidmap busybox-static iptables)
missing=()
for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  for _ in $(seq 1 60); do
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=300 "${missing[@]}" >&2; then break; fi
    log "apt-get failed (lock held?); retrying in 10 s"; sleep 10
  done
  command -v podman >/dev/null || { log "podman is still missing after install"; exit 1; }
fi

# 2. Engine configuration: runc (crun fails on hybrid cgroups) and ulimits high enough for Android.
conf=/etc/containers/containers.conf.d/cphone.conf
want='[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"'
if [[ ! -f "$conf" || "$(cat "$conf")" != "$want" ]]; then
  mkdir -p "$(dirname "$conf")"
  printf '%s\n' "$want" > "$conf"
  log "wrote $conf"
  restart=1
fi

# 3. The Docker-compatible API service.
answers() { curl -fsS --max-time 3 --unix-socket "$socket" http://d/_ping >/dev/null 2>&1; }
if [[ -n "${restart:-}" ]] && answers; then
  log "configuration changed; restarting the service on $socket"
  if [[ -f "$pidfile" ]]; then kill "$(cat "$pidfile")" 2>/dev/null || true; sleep 1; fi
fi
if ! answers; then
  rm -f "$socket"
  log "starting podman system service on $socket"
  setsid nohup podman system service --time=0 "unix://$socket" >/var/log/cphone-podman.log 2>&1 < /dev/null &
  echo $! > "$pidfile"
  for _ in $(seq 1 50); do answers && break; sleep 0.2; done
  answers || { log "podman service did not answer on $socket; see /var/log/cphone-podman.log"; exit 1; }
fi

# 4. The stand-in image.
ref="$(bash "$root/deploy/standin-image/build.sh")"
log "ready: DOCKER_HOST=unix://$socket image=$ref"
