#!/usr/bin/env bash
# Builds mediasoup's worker from Debian's libraries, with no download, and installs it where
# mediasoup looks by default (node_modules/mediasoup/worker/out/Release/mediasoup-worker), so nothing
# needs MEDIASOUP_WORKER_BIN at run time. mediasoup's own install step (denied in package.json's
# allowScripts) downloads a prebuilt worker from GitHub, or else builds with pip and meson wraps that
# download their sources: neither works in an air-gapped datacenter.
#
# The build runs in a temporary copy of node_modules/mediasoup/worker: its subprojects become the
# stubs in scripts/mediasoup-worker/subprojects (each wraps a Debian library; libsrtp3 adds a shim
# for the libsrtp 3 calls over Debian's 2.5), and two lines are patched (see patch_worker). The binary
# is cached outside node_modules, keyed by mediasoup's version and a hash of this script and the
# stubs, so a machine builds it once (about 5 minutes on 2 cores) and every later `npm ci` costs a copy.
# It links Debian's shared libuv1, libssl3, libsrtp2-1, libusrsctp2 and libabsl, which the build
# packages pull in.
#
# Written for mediasoup 3.18.1. Later versions (3.27 for one) add a subproject, unordered-dense, and
# call libsrtp 3's opaque policy API (srtp_policy_create and friends): on those the script stops,
# naming the subproject that has no stub here, and the shim needs the new calls.
#
#   bash scripts/mediasoup-worker.sh              ensure the worker: build into the cache if needed, install
#   bash scripts/mediasoup-worker.sh --if-missing  return at once when a worker is installed already
#   bash scripts/mediasoup-worker.sh --rebuild     build again even when the cache has this key
#
# Cache: ${CPHONE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cphone}/mediasoup-worker/<version>-<hash12>/
# Debian packages are installed when missing (as root; otherwise the missing ones are named).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pkg=$root/node_modules/mediasoup
target=$pkg/worker/out/Release/mediasoup-worker
log() { printf 'mediasoup-worker: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

mode=ensure
case "${1:-}" in
  '') ;;
  --if-missing) mode=if-missing ;;
  --rebuild) mode=rebuild ;;
  *) die "unknown argument ${1} (expected --if-missing or --rebuild)" ;;
esac

if [[ $mode == if-missing && -x $target ]]; then exit 0; fi
[[ -f $pkg/package.json ]] || die "node_modules/mediasoup is missing: run npm ci first"

version=$(sed -n 's/^\s*"version": "\([^"]*\)".*/\1/p' "$pkg/package.json" | head -1)
[[ -n $version ]] || die "cannot read mediasoup's version from $pkg/package.json"
# File names are part of the hash (sha256sum prints them), so a moved stub changes the key too.
hash=$(cd "$root/scripts" && find mediasoup-worker.sh mediasoup-worker -type f -print0 | LC_ALL=C sort -z |
  xargs -0 sha256sum | sha256sum | cut -c1-12)
cache_root=${CPHONE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cphone}/mediasoup-worker
key=$version-$hash
cached=$cache_root/$key/mediasoup-worker

install_target() {
  if cmp -s "$cached" "$target"; then
    log "ok: mediasoup $version worker installed ($cached)"
    return
  fi
  mkdir -p "$(dirname "$target")"
  # A copy, not a symlink: a service user may not see the builder's home (systemd ProtectHome).
  cp "$cached" "$target.tmp.$$"
  mv -f "$target.tmp.$$" "$target"
  log "installed mediasoup $version worker at node_modules/mediasoup/worker/out/Release (from $cached)"
}

if [[ $mode != rebuild && -x $cached ]]; then
  install_target
  exit 0
fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.$key.lock"
if ! flock -n 9; then
  log "another build of $key is running; waiting for it"
  flock 9
fi
# The run that held the lock may have built it meanwhile.
if [[ $mode != rebuild && -x $cached ]]; then
  install_target
  exit 0
fi

# Build dependencies (Debian 12). libusrsctp-dev serves mediasoup <= 3.19, which links usrsctp.
packages=(build-essential pkg-config meson ninja-build libuv1-dev libssl-dev libsrtp2-dev libabsl-dev
  flatbuffers-compiler libflatbuffers-dev libusrsctp-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  ((EUID == 0)) || die "missing Debian packages (install them as root): ${missing[*]}"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq -o DPkg::Lock::Timeout=300
  apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mediasoup-worker.XXXXXX")
trap 'rm -rf "$work"' EXIT
buildlog=$cache_root/$key.build.log
: >"$buildlog"

log "building mediasoup $version worker from Debian's libraries (about 5 min on 2 cores; log: $buildlog)"
cp -a "$pkg/worker" "$work/worker"
src=$work/worker
rm -rf "$src/out"

# Every wrap would download; each is replaced by the stub of the same name.
for wrap in "$src"/subprojects/*.wrap; do
  name=$(basename "$wrap" .wrap)
  stub=$root/scripts/mediasoup-worker/subprojects/$name
  [[ -d $stub ]] || die "mediasoup $version uses subproject '$name', which has no stub in scripts/mediasoup-worker/subprojects"
  rm -f "$wrap"
  rm -rf "${src:?}/subprojects/$name"
  cp -r "$stub" "$src/subprojects/$name"
done
rm -rf "$src/subprojects/packagefiles"

patch_worker() {
  # Debian 12 has meson 1.0.1; the worker asks for 1.1 but builds with 1.0.
  sed -i "s/meson_version: *'>= *1\.[0-9.]*'/meson_version: '>= 1.0.0'/" "$src/meson.build"
  # Upstream bug: the DTLS BIO callback compares the operation with BIO_CB_RETURN, but OpenSSL passes
  # BIO_CB_RETURN or'ed with the operation, so every return call reported 1 instead of the real result.
  # With Debian's OpenSSL (KTLS built in) the worker then dies with SIGSEGV in SSL_read on the first
  # ClientHello from a browser.
  local dtls=$src/src/RTC/DtlsTransport.cpp
  if grep -q 'operationType == BIO_CB_RETURN' "$dtls"; then
    sed -i 's/operationType == BIO_CB_RETURN/operationType \& BIO_CB_RETURN/' "$dtls"
  elif ! grep -q 'operationType & BIO_CB_RETURN' "$dtls"; then
    die "mediasoup $version: the DTLS BIO callback changed; check the BIO_CB_RETURN fix in this script"
  fi
}
patch_worker

options=(--wrap-mode=nodownload --buildtype release -Db_ndebug=true)
grep -q ms_disable_liburing "$src/meson_options.txt" && options+=(-Dms_disable_liburing=true)

started=$SECONDS
fail() {
  tail -n 40 "$buildlog" >&2
  die "$1 failed (full log: $buildlog)"
}
log "meson setup"
(cd "$src" && meson setup "${options[@]}" out/build) >>"$buildlog" 2>&1 || fail "meson setup"
log "generating flatbuffers code"
meson compile -C "$src/out/build" flatbuffers-generator >>"$buildlog" 2>&1 || fail "flatbuffers generation"
log "compiling"
# ninja prints [done/total] per step: keep all of it in the log, and show every tenth of the way.
set +e
ninja -C "$src/out/build" -j "$(nproc)" mediasoup-worker 2>&1 | tee -a "$buildlog" |
  awk -F'[][/]' '/^\[[0-9]+\/[0-9]+\]/ { p = int($2 * 10 / $3); if (p > shown) { shown = p; printf "mediasoup-worker:   %d%% (%d/%d)\n", p * 10, $2, $3 > "/dev/stderr" } }'
status=${PIPESTATUS[0]}
set -e
((status == 0)) || fail "compiling"

built=$src/out/build/mediasoup-worker
if ldd "$built" | grep -q 'not found'; then
  ldd "$built" >&2
  die "the built worker misses shared libraries"
fi
mkdir -p "$(dirname "$cached")"
cp "$built" "$cached.tmp.$$"
mv -f "$cached.tmp.$$" "$cached"
log "built in $((SECONDS - started)) s: $cached"
install_target
