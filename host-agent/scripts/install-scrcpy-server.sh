#!/usr/bin/env bash
# Installs the scrcpy server the agent pushes to phones (scrcpy-server-v3.3.3) and checks it is
# the release: its sha256 must be the one scrcpy published (also pinned in
# src/screen/scrcpy-version.ts, which the agent checks again before every push).
#
# Usage: install-scrcpy-server.sh [DEST] [SOURCE]
#   DEST    where the agent reads it (CPHONE_SCRCPY_SERVER); default /var/lib/cphone-agent/scrcpy-server-v3.3.3
#   SOURCE  a copy the operator brought (air-gapped sites). Without it the file is downloaded with
#           @yume-chan/fetch-scrcpy-server from npm, which fetches the release; that needs internet.
set -euo pipefail
VERSION=3.3.3
SHA256=7e70323ba7f259649dd4acce97ac4fefbae8102b2c6d91e2e7be613fd5354be0
dest="${1:-/var/lib/cphone-agent/scrcpy-server-v$VERSION}"
source="${2:-}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ -z "$source" ]; then
  # In a scratch prefix: the download tool and its dependencies never enter the project's tree.
  npm install --prefix "$work" --no-save --no-audit --no-fund @yume-chan/fetch-scrcpy-server@1.0.0 >/dev/null
  (cd "$work" && npx --no-install fetch-scrcpy-server "$VERSION")
  source="$work/node_modules/@yume-chan/fetch-scrcpy-server/server.bin"
fi
echo "$SHA256  $source" | sha256sum --check --quiet || {
  echo "install-scrcpy-server: $source is not scrcpy-server-v$VERSION (sha256 $(sha256sum "$source" | cut -d' ' -f1))" >&2
  exit 1
}
install -D -m 0644 "$source" "$dest"
echo "install-scrcpy-server: $dest"
