#!/usr/bin/env bash
# Builds cphone's images with podman from deploy/images/Containerfile and prints their references,
# one per line:
#   localhost/cphone/control-plane:<version>
#   localhost/cphone/console:<version>
# Idempotent and quick when nothing changed: each image carries a label with the hash of everything
# it is built from (the files the Containerfile copies, the base image, the commit), and a build
# whose hash matches both images does nothing.
#
# The base: CPHONE_BASE_IMAGE when set; else the Containerfile's pinned base when it is in podman's
# local storage (`podman pull` it first where a registry is reachable); else, as on machines with no
# registry (CI here), a stand-in built by standin-base.sh from Debian's packages and this machine's
# Node 20, passed as --build-arg NODE_IMAGE=… (podman cannot resolve a FROM name@sha256:digest to a
# locally built image: the digest names the registry's manifest, which a local build cannot have).
#
# Offline: the build runs with --network=none. npm ci inside reads the packages from this machine's
# npm cache (`npm config get cache`, filled by the `npm ci` every checkout runs first), mounted as an
# overlay so the build's writes do not reach it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
containerfile="$here/Containerfile"
log() { echo "images: $*" >&2; }

version="$(node -p "require('$root/package.json').version")"
refs=("localhost/cphone/control-plane:$version" "localhost/cphone/console:$version")
targets=(control-plane console)
pinned="$(sed -n 's/^ARG NODE_IMAGE=//p' "$containerfile")"

# Exactly what the Containerfile copies, plus the files that say how.
inputs=(package.json package-lock.json tsconfig.base.json tsconfig.json scripts/bundle.mjs
  proto/package.json proto/tsconfig.json proto/src control-plane/package.json control-plane/tsconfig.json
  control-plane/src host-agent/package.json sfu/package.json cli/package.json web/package.json
  web/tsconfig.json web/src deploy/images)

if [[ -n "${CPHONE_BASE_IMAGE:-}" ]]; then
  base="$CPHONE_BASE_IMAGE"
elif podman image exists "$pinned"; then
  base="$pinned"
else
  base="$(bash "$here/standin-base.sh")"
fi
base_id="$(podman image inspect --format '{{.Id}}' "$base")"

# The commit the images report: the newest one that changed their inputs, so a commit elsewhere in
# the repository does not rebuild them; "-dirty" when an input differs from it.
commit="$(git -C "$root" log -1 --format=%h -- "${inputs[@]}" 2>/dev/null || true)"
commit="${commit:-unknown}"
if [[ -n "$(git -C "$root" status --porcelain -- "${inputs[@]}" 2>/dev/null)" ]]; then commit="$commit-dirty"; fi

hash="$( { cd "$root" && git ls-files -co --exclude-standard -- "${inputs[@]}" | LC_ALL=C sort | xargs -d '\n' sha256sum;
  echo "$base_id $commit"; } | sha256sum | cut -c1-16)"

current=1
for ref in "${refs[@]}"; do
  [[ "$(podman image inspect --format '{{index .Labels "io.cphone.inputs"}}' "$ref" 2>/dev/null)" == "$hash" ]] || current=0
done
if ((current)); then printf '%s\n' "${refs[@]}"; exit 0; fi

npm_cache="$(npm config get cache)"
[[ -d "$npm_cache/_cacache" ]] || { log "no npm cache at $npm_cache: run npm ci in the checkout first"; exit 1; }
build_args=(--build-arg "CPHONE_COMMIT=$commit")
[[ "$base" == "$pinned" ]] || build_args+=(--build-arg "NODE_IMAGE=$base")

log "building ${refs[*]} (base $base, commit $commit)"
for i in "${!targets[@]}"; do
  ref="${refs[$i]}"
  old="$(podman image inspect --format '{{.Id}}' "$ref" 2>/dev/null || true)"
  podman build --pull=never --network=none --layers \
    --volume "$npm_cache:/root/.npm:O" \
    "${build_args[@]}" \
    --label "io.cphone.inputs=$hash" --label "io.cphone.version=$version" --label "io.cphone.commit=$commit" \
    --target "${targets[$i]}" --tag "$ref" --file "$containerfile" "$root" >&2 \
    || { log "podman build of ${targets[$i]} failed (output above)"; exit 1; }
  new="$(podman image inspect --format '{{.Id}}' "$ref")"
  # The image this tag named before is dead weight unless a container still uses it.
  if [[ -n "$old" && "$old" != "$new" ]]; then podman rmi "$old" >/dev/null 2>&1 || true; fi
done
printf '%s\n' "${refs[@]}"
