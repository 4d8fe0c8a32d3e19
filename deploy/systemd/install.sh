#!/usr/bin/env bash
# Installs the cphone host agent on a phone server (Debian 12, as root) from the checkout this script
# sits in, which is the agent's working directory (/opt/cphone in cphone-agent.service): npm ci,
# mediasoup's worker built from Debian's libraries (nothing is downloaded but Debian and npm packages,
# so air-gapped datacenters with local mirrors work; the build packages are installed here, and the
# worker is built once per server, then copied from the cache), the service user, the settings file
# (kept when it exists) and the unit. Idempotent. Then edit /etc/cphone/agent.env and
#   systemctl enable --now cphone-agent
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
log() { printf 'install: %s\n' "$*" >&2; }

((EUID == 0)) || {
  log "run as root"
  exit 1
}
[[ $root == /opt/cphone ]] || log "note: cphone-agent.service runs /opt/cphone; this checkout is $root"
# From 11.16 npm honours package.json's allowScripts denial, which keeps mediasoup's own install
# step (a download) from running; older npm runs it and the install fails offline.
npm_version=$(npm --version)
printf '%s\n' 11.16.0 "$npm_version" | sort -V -C || {
  log "npm $npm_version is too old: npm 11.16 or newer is needed"
  exit 1
}

cd "$root"
log "npm ci"
npm ci --no-audit --no-fund
bash scripts/mediasoup-worker.sh

id cphone-agent >/dev/null 2>&1 || useradd --system --home /var/lib/cphone-agent --groups docker cphone-agent
install -d -m 0755 /etc/cphone
if [[ ! -e /etc/cphone/agent.env ]]; then
  install -m 0640 -o root -g cphone-agent "$here/agent.env.example" /etc/cphone/agent.env
  log "wrote /etc/cphone/agent.env from agent.env.example: fill it in"
fi
install -m 0644 "$here/cphone-agent.service" /etc/systemd/system/cphone-agent.service
# Each sfu worker sends to all its viewers from one UDP socket and asks for 4 MiB buffers; the
# kernel caps that at these limits (208 KiB by default).
cat > /etc/sysctl.d/60-cphone-sfu.conf <<'SYSCTL'
net.core.wmem_max = 4194304
net.core.rmem_max = 4194304
SYSCTL
sysctl -q -p /etc/sysctl.d/60-cphone-sfu.conf || log "sysctl: could not apply the socket buffer limits now"
systemctl daemon-reload
log "done; after editing /etc/cphone/agent.env: systemctl enable --now cphone-agent"
