#!/usr/bin/env bash
# Debian's Prometheus for the monitoring suite (tests/deploy/monitoring.test.ts): `promtool` checks and
# unit-tests deploy/monitoring/rules, and the `prometheus` binary scrapes a running platform on
# loopback with its data in a temporary dir. The package's own service must never run here (it would
# listen on every interface with the package's config): its systemd unit is masked before the
# package arrives, so its postinst cannot start it, and a sysv start is undone. Idempotent; about
# a minute on a fresh machine (apt-get update included), nothing once installed.
set -euo pipefail
mkdir -p /etc/systemd/system
for unit in prometheus.service prometheus-node-exporter.service; do
  [[ -e /etc/systemd/system/$unit || -L /etc/systemd/system/$unit ]] || ln -s /dev/null "/etc/systemd/system/$unit"
done
if ! dpkg-query -W -f='${Status}' prometheus 2>/dev/null | grep -q 'ok installed'; then
  echo "setup-prometheus: installing prometheus (promtool)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq -o DPkg::Lock::Timeout=300
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 prometheus >/dev/null
  if [[ ! -d /run/systemd/system && -x /etc/init.d/prometheus ]]; then
    /etc/init.d/prometheus stop >/dev/null 2>&1 || true
  fi
fi
command -v promtool >/dev/null && command -v prometheus >/dev/null
echo "setup-prometheus: ok" >&2
