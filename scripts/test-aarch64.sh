#!/bin/sh
# Cross-compiles for aarch64 and runs the test suite under qemu-user.
# Usage: scripts/test-aarch64.sh [build-dir] [ctest args...]
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build-aarch64}
[ $# -gt 0 ] && shift
cmake -S "$src" -B "$build" -DCMAKE_TOOLCHAIN_FILE="$src/cmake/aarch64-linux-gnu.cmake" \
	-DPERCPU_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build" -j"$(nproc)"
# Under emulation everything is slower: keep the stress tests short.
cd "$build" && PERCPU_TEST_SCALE=${PERCPU_TEST_SCALE:-0.05} ctest --output-on-failure -j2 "$@"
