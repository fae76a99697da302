#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every test. Exit code is ctest's.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

bash "$repo/scripts/setup-deps.sh"
bash "$repo/scripts/build.sh"
exec ctest --test-dir "$repo/build" --output-on-failure -j2
