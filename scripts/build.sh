#!/usr/bin/env bash
# Configures (Ninja, RelWithDebInfo, warnings as errors) into build/ and builds everything.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$repo/build

printf '[build] configuring %s\n' "$build"
cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_WERROR=ON >/dev/null
printf '[build] building with %s jobs\n' "$(nproc)"
cmake --build "$build" -j"$(nproc)"
