#!/usr/bin/env bash
# Installs what building and testing libpercpu needs on Debian 12.
# Idempotent and silent when everything is present; run as root (or sudo).
set -euo pipefail

packages=(
  cmake make gcc libc6-dev pkg-config   # the build
  clang libclang-rt-14-dev              # clang builds, sanitizers, libFuzzer
  valgrind                              # the fallback path without rseq
  sparse                                # the __percpu checker
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user   # aarch64 cross tests
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup-deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
