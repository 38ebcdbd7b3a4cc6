#!/usr/bin/env bash
# Installs libpercpu into a scratch prefix and builds programs against it
# with find_package(percpu) (shared and static) and with pkg-config (also
# with link-time optimization).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake -S "$src" -B "$work/build" -DPERCPU_TESTS=OFF -DPERCPU_BENCH=OFF -DPERCPU_WERROR=ON \
      -DCMAKE_INSTALL_PREFIX="$work/prefix" >/dev/null
cmake --build "$work/build" -j"$(nproc)" >/dev/null
cmake --install "$work/build" >/dev/null
prefix=$work/prefix
for f in include/percpu/percpu.h include/percpu/linux.h include/percpu/config.h \
         lib/libpercpu.so lib/libpercpu.a bin/percpu-info lib/pkgconfig/percpu.pc \
         lib/cmake/percpu/percpuConfig.cmake share/man/man3/percpu.3; do
  [ -e "$prefix/$f" ] || { echo "missing after install: $f"; exit 1; }
done

cmake -S "$src/tests/consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/consumer" >/dev/null
LD_LIBRARY_PATH=$prefix/lib "$work/consumer/consumer"
"$work/consumer/consumer_static"

PKG_CONFIG_PATH=$prefix/lib/pkgconfig
export PKG_CONFIG_PATH
cc -std=gnu11 "$src/tests/consumer/main.c" $(pkg-config --cflags --libs percpu) -o "$work/pc"
LD_LIBRARY_PATH=$prefix/lib "$work/pc"
# Link-time optimization must keep what only the headers' asm reads.
cc -std=gnu11 -O2 -flto "$src/tests/consumer/main.c" $(pkg-config --cflags --libs percpu) \
  -o "$work/pc_lto"
LD_LIBRARY_PATH=$prefix/lib "$work/pc_lto"
LD_LIBRARY_PATH=$prefix/lib "$prefix/bin/percpu-info" --cpus 16 --static 185048 --reserved 8192 \
  --dynamic 28672 --atom 2M
echo "install: headers, libraries, percpu-info, pkg-config (also with -flto) and CMake package work"
