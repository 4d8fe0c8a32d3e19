#!/usr/bin/env bash
# Installs the cphone host agent on a phone server (Debian 12, arm64 or amd64, as root) from the
# checkout this script sits in, which is the agent's home (/opt/cphone in cphone-agent.service):
#   1. Debian packages: the container engine (docker.io, or podman), chrony when no time sync is
#      installed, kmod
#   2. the engine: dockerd enabled; or podman.socket enabled with its socket in the docker group
#   3. the cphone-agent user and group (member of docker), /var/lib/cphone-agent (0750)
#   4. /etc/cphone/agent.env from agent.env.example (kept when it exists)
#   5. npm ci (skipped while package-lock.json is unchanged) and mediasoup's worker built from
#      Debian's libraries (scripts/mediasoup-worker.sh: nothing is downloaded but Debian and npm
#      packages, so air-gapped datacenters with local mirrors work)
#   6. /usr/local/bin/cphone-agent (the launcher) and /etc/systemd/system/cphone-agent.service
#   7. /etc/sysctl.d/60-cphone.conf: inotify sized from CPHONE_MAX_DEVICES, pid_max, max_map_count,
#      socket buffers, somaxconn, file-max, ip_forward, the WebRTC ports reserved; applied now
#   8. binder: /etc/modprobe.d/cphone.conf (devices=binder,hwbinder,vndbinder),
#      /etc/modules-load.d/cphone.conf (binder_linux, and ashmem_linux where the kernel has it),
#      loaded now; binderfs mounted at /dev/binderfs (dev-binderfs.mount)
# Idempotent: each step compares before it acts and says "ok" when there is nothing to do.
#
#   bash deploy/host/install.sh [--dry-run] [--runtime docker|podman] [--env-file FILE]
#     --dry-run         print what would change, change nothing (needs no root)
#     --runtime         the engine to install and use (default docker)
#     --env-file FILE   the settings that size the kernel limits (default /etc/cphone/agent.env,
#                       else agent.env.example's defaults)
# Then: fill in /etc/cphone/agent.env, run `cphone-agent doctor`, systemctl enable --now cphone-agent.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
log() { printf 'install: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

dry_run=0
runtime=docker
env_file=/etc/cphone/agent.env
while (($#)); do
  case $1 in
    --dry-run) dry_run=1 ;;
    --runtime)
      runtime=${2:-}
      shift
      ;;
    --env-file)
      env_file=${2:-}
      shift
      [[ -r $env_file ]] || die "--env-file $env_file cannot be read"
      ;;
    *) die "unknown argument $1 (expected --dry-run, --runtime docker|podman, --env-file FILE)" ;;
  esac
  shift
done
[[ $runtime == docker || $runtime == podman ]] || die "--runtime must be docker or podman, not '$runtime'"
((dry_run || EUID == 0)) || die "run as root (or with --dry-run)"
# What --dry-run prints goes to stdout, one "would: ..." line per change (file contents indented).
changed=0
act() { # act DESCRIPTION COMMAND...
  local what=$1
  shift
  changed=1
  if ((dry_run)); then
    printf 'would: %s ($ %s)\n' "$what" "$*"
  else
    log "$what"
    "$@"
  fi
}
have_systemd() { [[ -d /run/systemd/system ]]; }
systemctl_now() { # what systemctl would do; skipped where systemd is not PID 1 (containers, chroots)
  if have_systemd || ((dry_run)); then act "systemctl $*" systemctl "$@"; else log "no systemd running: skipped systemctl $*"; fi
}
# write_file PATH MODE OWNER:GROUP < content; returns 0 when it changed (or would change) the file.
write_file() {
  local path=$1 mode=$2 owner=$3 content
  content=$(cat)
  if [[ -f $path && "$(cat "$path")" == "$content" ]]; then
    log "ok: $path"
    return 1
  fi
  changed=1
  if ((dry_run)); then
    printf 'would: write %s (mode %s, %s)\n' "$path" "$mode" "$owner"
    printf '%s\n' "$content" | sed 's/^/    /'
    return 0
  fi
  log "writing $path"
  mkdir -p "$(dirname "$path")"
  printf '%s\n' "$content" > "$path.tmp.$$"
  chmod "$mode" "$path.tmp.$$"
  chown "$owner" "$path.tmp.$$"
  mv -f "$path.tmp.$$" "$path"
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

# 0. The machine and the tools the agent runs on.
[[ -f /etc/debian_version ]] || log "warning: not Debian; the package names below are Debian 12's"
arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
case $arch in
  arm64 | aarch64 | amd64 | x86_64) log "architecture $arch" ;;
  *) die "architecture $arch: phones run on arm64 (or amd64) hosts only" ;;
esac
command -v node >/dev/null || die "node is missing: install Node.js 20.10 or newer (Debian 12's nodejs is 18)"
node_version=$(node --version)
node_version=${node_version#v}
printf '%s\n' 20.10.0 "$node_version" | sort -V -C || die "node $node_version is too old: 20.10 or newer is needed"
# From 11.16 npm honours package.json's allowScripts denial, which keeps mediasoup's own install
# step (a download) from running; older npm runs it and the install fails offline.
npm_version=$(npm --version)
printf '%s\n' 11.16.0 "$npm_version" | sort -V -C || die "npm $npm_version is too old: npm 11.16 or newer is needed"
[[ $root == /opt/cphone ]] || log "note: cphone-agent.service runs /opt/cphone; this checkout is $root"

# 1. Packages.
packages=(kmod)
if [[ $runtime == docker ]]; then packages+=(docker.io); else packages+=(podman runc fuse-overlayfs slirp4netns uidmap iptables); fi
installed chrony || installed systemd-timesyncd || installed ntpsec || packages+=(chrony)
missing=()
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done
if ((${#missing[@]})); then
  act "install ${missing[*]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=300 "${missing[@]}"
else
  log "ok: packages ${packages[*]}"
fi

# 2. The engine, and its socket for the docker group.
getent group docker >/dev/null || act "create the docker group (the engine socket's group)" groupadd --system docker
if [[ $runtime == docker ]]; then
  socket=/var/run/docker.sock
  systemctl_now enable --now docker.service
else
  socket=/run/podman/podman.sock
  write_file /etc/systemd/system/podman.socket.d/cphone.conf 0644 root:root <<'EOF' && units=1 || true
# cphone: the agent (group docker) reaches podman's Docker API as it would Docker's.
[Socket]
SocketGroup=docker
SocketMode=0660
EOF
  # Android's init and zygote need more descriptors and processes than podman's defaults.
  write_file /etc/containers/containers.conf.d/cphone.conf 0644 root:root <<'EOF' || true
[containers]
default_ulimits = ["nofile=1048576:1048576", "nproc=65536:65536"]
EOF
  [[ -z ${units:-} ]] || systemctl_now daemon-reload
  systemctl_now enable --now podman.socket
fi

# 3. The service user and its data dir.
if ! id cphone-agent >/dev/null 2>&1; then
  act "create the cphone-agent user and group" useradd --system --user-group --home-dir /var/lib/cphone-agent \
    --no-create-home --shell /usr/sbin/nologin --groups docker cphone-agent
elif ! id -nG cphone-agent | tr ' ' '\n' | grep -qx docker; then
  act "add cphone-agent to the docker group" usermod -aG docker cphone-agent
else
  log "ok: user cphone-agent (groups $(id -nG cphone-agent))"
fi
if [[ -d /var/lib/cphone-agent ]]; then
  log "ok: /var/lib/cphone-agent"
else
  act "create /var/lib/cphone-agent" install -d -m 0750 -o cphone-agent -g cphone-agent /var/lib/cphone-agent
fi

# 4. Settings.
[[ -d /etc/cphone ]] || act "create /etc/cphone" install -d -m 0755 /etc/cphone
if [[ -e /etc/cphone/agent.env ]]; then
  log "ok: /etc/cphone/agent.env kept"
else
  act "write /etc/cphone/agent.env from agent.env.example (fill it in)" \
    install -m 0640 -o root -g cphone-agent "$here/agent.env.example" /etc/cphone/agent.env
fi
if [[ $runtime == podman ]] && ! grep -q '^CPHONE_DOCKER_SOCKET=' /etc/cphone/agent.env 2>/dev/null; then
  act "set CPHONE_DOCKER_SOCKET=$socket in /etc/cphone/agent.env" \
    sh -c "printf 'CPHONE_DOCKER_SOCKET=%s\n' '$socket' >> /etc/cphone/agent.env"
fi

# 5. The agent's dependencies and mediasoup's worker.
lock_hash=$(sha256sum "$root/package-lock.json" | cut -d' ' -f1)
stamp=$root/node_modules/.cphone-install-stamp
if [[ -f $stamp && "$(cat "$stamp")" == "$lock_hash" ]]; then
  log "ok: node_modules match package-lock.json"
else
  act "npm ci in $root" sh -c "cd '$root' && npm ci --no-audit --no-fund && echo '$lock_hash' > '$stamp'"
fi
if [[ -x $root/node_modules/mediasoup/worker/out/Release/mediasoup-worker ]] && ((dry_run)); then
  log "ok: mediasoup worker installed (the real run checks its cache key)"
else
  act "mediasoup worker (built from Debian's libraries once, then copied from its cache)" bash "$root/scripts/mediasoup-worker.sh"
fi

# 6. Launcher and unit.
units=
write_file /usr/local/bin/cphone-agent 0755 root:root < "$here/cphone-agent" || true
write_file /etc/systemd/system/cphone-agent.service 0644 root:root < "$here/cphone-agent.service" && units=1 || true

# 7. Kernel settings, sized from the settings file.
setting() { # setting NAME DEFAULT: its value in the settings file, else DEFAULT
  local file=$env_file value=
  [[ -r $file ]] || file=$here/agent.env.example
  value=$(sed -n "s/^$1=[\"']\{0,1\}\([^\"']*\)[\"']\{0,1\}\s*$/\1/p" "$file" | tail -1)
  printf '%s' "${value:-$2}"
}
current() { cat "/proc/sys/${1//.//}" 2>/dev/null || echo 0; }
at_least() { # at_least NAME WANTED: WANTED, or the running value when it is higher (never lower a limit)
  local now
  now=$(current "$1")
  ((now > $2)) && echo "$now" || echo "$2"
}
phones=$(setting CPHONE_MAX_DEVICES 32)
[[ $phones =~ ^[0-9]+$ ]] || die "CPHONE_MAX_DEVICES=$phones is not a number"
# The doctor's rule (host-agent/src/doctor/kernel-checks.ts, inotifyNeeded): 512 + 128 instances and
# 65536 + 16384 watches per phone; never less than 8192 and 1048576.
instances=$((512 + 128 * phones))
((instances > 8192)) || instances=8192
watches=$((65536 + 16384 * phones))
((watches > 1048576)) || watches=1048576
sysctl_conf="# cphone host agent (deploy/host/install.sh): limits for $phones phones (CPHONE_MAX_DEVICES).
# Every phone's processes run as the host's root, so one per-user inotify limit covers all phones.
fs.inotify.max_user_instances = $(at_least fs.inotify.max_user_instances "$instances")
fs.inotify.max_user_watches = $(at_least fs.inotify.max_user_watches "$watches")
kernel.pid_max = $(at_least kernel.pid_max 4194304)
vm.max_map_count = $(at_least vm.max_map_count 262144)
fs.file-max = $(at_least fs.file-max 2097152)
net.core.somaxconn = $(at_least net.core.somaxconn 4096)
# Each sfu worker sends to all its viewers from one UDP socket and asks for 4 MiB buffers.
net.core.wmem_max = $(at_least net.core.wmem_max 4194304)
net.core.rmem_max = $(at_least net.core.rmem_max 4194304)
# Phones reach the internet through the engine's bridge and NAT.
net.ipv4.ip_forward = 1"
rtc_port=$(setting CPHONE_RTC_PORT 40000)
workers=$(setting CPHONE_SFU_WORKERS $(($(nproc) / 2 > 0 ? $(nproc) / 2 : 1)))
if [[ $(setting CPHONE_STREAM on) == on && $rtc_port != 0 ]]; then
  sysctl_conf+="
# The sfu workers' WebRTC ports (CPHONE_RTC_PORT + worker): kept out of the ephemeral range.
net.ipv4.ip_local_reserved_ports = $rtc_port-$((rtc_port + workers - 1))"
fi
if write_file /etc/sysctl.d/60-cphone.conf 0644 root:root <<< "$sysctl_conf"; then
  act "apply /etc/sysctl.d/60-cphone.conf" sysctl -q -p /etc/sysctl.d/60-cphone.conf ||
    log "warning: sysctl could not apply every setting now (a key this kernel lacks?); they apply at boot where they can"
fi
# The file an earlier install.sh wrote (socket buffers only) is part of 60-cphone.conf now.
[[ ! -e /etc/sysctl.d/60-cphone-sfu.conf ]] || act "remove /etc/sysctl.d/60-cphone-sfu.conf (now in 60-cphone.conf)" rm -f /etc/sysctl.d/60-cphone-sfu.conf

# 8. Binder (and ashmem where the kernel still has it: Linux 5.18 dropped it; phones use memfd).
binderfs() { grep -qw binder /proc/filesystems; }
modules=()
modinfo binder_linux >/dev/null 2>&1 && modules+=(binder_linux)
modinfo ashmem_linux >/dev/null 2>&1 && modules+=(ashmem_linux)
write_file /etc/modprobe.d/cphone.conf 0644 root:root <<'EOF' || true
# cphone: the binder devices Android needs when binder_linux makes them itself (binderfs makes
# them per phone).
options binder_linux devices=binder,hwbinder,vndbinder
EOF
if ((${#modules[@]})); then
  write_file /etc/modules-load.d/cphone.conf 0644 root:root <<< "# cphone: loaded at boot for Redroid phones
$(printf '%s\n' "${modules[@]}")" || true
  for m in "${modules[@]}"; do
    [[ -d /sys/module/$m ]] || act "load $m" modprobe "$m" || log "warning: modprobe $m failed (dmesg says why)"
  done
elif ! binderfs; then
  log "warning: this kernel ($(uname -r)) has no binder: no binderfs, no binder_linux module; phones cannot boot. See \`cphone-agent doctor\`."
fi
write_file /etc/systemd/system/dev-binderfs.mount 0644 root:root < "$here/dev-binderfs.mount" && units=1 || true
[[ -z $units ]] || systemctl_now daemon-reload
if binderfs || ((${#modules[@]})); then
  mountpoint -q /dev/binderfs 2>/dev/null && log "ok: /dev/binderfs mounted" || systemctl_now enable --now dev-binderfs.mount
fi

if ((dry_run)); then
  ((changed)) && printf 'dry run: nothing was changed\n' || printf 'dry run: the host is installed, nothing to change\n'
else
  log "done. Next: fill in /etc/cphone/agent.env (CPHONE_HOST_ID, the credential, CPHONE_CONTROL_PLANE, CPHONE_CA_FILE),"
  log "run \`cphone-agent doctor\`, then \`systemctl enable --now cphone-agent\`"
fi
