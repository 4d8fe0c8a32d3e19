#!/usr/bin/env bash
# Builds cphone's images with podman from deploy/images/Containerfile and prints their references,
# one per line:
#   localhost/cphone/control-plane:<version>
#   localhost/cphone/console:<version>
# Idempotent and quick when nothing changed: a stamp in the cache dir records the hash of everything
# the images are built from (the files the Containerfile copies, the base image, the commit) and the
# images it made; while both match, the script only prints the references.
#
# The base: CPHONE_BASE_IMAGE when set; else the Containerfile's pinned base when it is in podman's
# local storage (`podman pull` it first where a registry is reachable); else, as on machines with no
# registry (CI here), a stand-in built by standin-base.sh from Debian's packages and this machine's
# Node 20, passed as --build-arg NODE_IMAGE=… (podman cannot resolve a FROM name@sha256:digest to a
# locally built image: the digest names the registry's manifest, which a local build cannot have).
#
# HEALTHCHECK is kept only in the docker image format (OCI images have no such field), hence
# --format docker. Offline: the build runs with --network=none. npm ci inside reads the packages from this machine's
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
# The build stage is tagged too (never printed): its previous image is then removed like the others',
# instead of staying behind untagged (~700 MB each) after every change.
build_cache="localhost/cphone/build-cache:$version"
pinned="$(sed -n 's/^ARG NODE_IMAGE=//p' "$containerfile")"

# Exactly what the Containerfile copies, plus the files that say how.
inputs=(package.json package-lock.json tsconfig.base.json tsconfig.json scripts/bundle.mjs
  proto/package.json proto/tsconfig.json proto/src control-plane/package.json control-plane/tsconfig.json
  control-plane/src host-agent/package.json sfu/package.json cli/package.json web/package.json
  web/tsconfig.json web/src deploy/images)

# What the last build made from which inputs. (Not an image label: with --layers, buildah reuses a
# cached image whose --label values differ.) Builds on this machine take turns, the stand-in base
# included (the tags are shared by every checkout): the lock is held until the new stamp.
stamp="${CPHONE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cphone}/images/$version.stamp"
mkdir -p "$(dirname "$stamp")"
exec 9>"$(dirname "$stamp")/build.lock"
flock 9

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

ids() { for ref in "${refs[@]}"; do podman image inspect --format '{{.Id}}' "$ref" 2>/dev/null || echo missing; done; }
if [[ -f "$stamp" && "$(cat "$stamp")" == "$hash $(ids | tr '\n' ' ')" ]]; then printf '%s\n' "${refs[@]}"; exit 0; fi

npm_cache="$(npm config get cache)"
[[ -d "$npm_cache/_cacache" ]] || { log "no npm cache at $npm_cache: run npm ci in the checkout first"; exit 1; }
build_args=(--build-arg "CPHONE_COMMIT=$commit" --build-arg "CPHONE_VERSION=$version")
# The same labels again as build flags: podman 4.3's layer cache reuses a LABEL layer whose ARG
# values changed, so an image could carry the previous build's revision (the Containerfile's LABEL
# stays for builders that key the cache on ARG values).
build_args+=(--label "org.opencontainers.image.version=$version" --label "org.opencontainers.image.revision=$commit")
[[ "$base" == "$pinned" ]] || build_args+=(--build-arg "NODE_IMAGE=$base")

log "building ${refs[*]} (base $base, commit $commit)"
all_targets=(build "${targets[@]}")
all_refs=("$build_cache" "${refs[@]}")
for i in "${!all_targets[@]}"; do
  ref="${all_refs[$i]}"
  old="$(podman image inspect --format '{{.Id}}' "$ref" 2>/dev/null || true)"
  podman build --pull=never --network=none --layers --format docker \
    --volume "$npm_cache:/root/.npm:O" --ignorefile "$here/containerignore" "${build_args[@]}" \
    --target "${all_targets[$i]}" --tag "$ref" --file "$containerfile" "$root" >&2 \
    || { log "podman build of ${all_targets[$i]} failed (output above)"; exit 1; }
  new="$(podman image inspect --format '{{.Id}}' "$ref")"
  # The image this tag named before is dead weight unless a container still uses it.
  if [[ -n "$old" && "$old" != "$new" ]]; then podman rmi "$old" >/dev/null 2>&1 || true; fi
done
echo "$hash $(ids | tr '\n' ' ')" > "$stamp"
printf '%s\n' "${refs[@]}"
