#!/bin/sh
# Configure and build minivm for this host in build/ (Ninja, RelWithDebInfo).
set -eu
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DMINIVM_TESTS=ON >/dev/null
ninja -C build
