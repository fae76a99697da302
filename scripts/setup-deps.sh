#!/usr/bin/env bash
# Installs what Ferry needs to build and test on Debian 12: Debian packages, and s3rver (pinned in
# tests/package-lock.json) into tests/node_modules. Idempotent: a second run only checks, in about a second.
# Needs root (or sudo) only when something is missing.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export DEBIAN_FRONTEND=noninteractive

say() { printf '[setup-deps] %s\n' "$*"; }
die() { printf '[setup-deps] ERROR: %s\n' "$*" >&2; exit 1; }

packages=(
  build-essential cmake ninja-build pkg-config clang-format
  libboost1.81-all-dev libssl-dev libisal-dev libpugixml-dev libsimdjson-dev librocksdb-dev
  libtomlplusplus-dev libcli11-dev libspdlog-dev libsystemd-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  rclone openssl curl
  awscli s3cmd # independent S3 clients for tests (DESIGN.md), besides rclone
)

installed() { [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]; }

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done
# Node may come from elsewhere (e.g. NodeSource, which bundles npm): only add Debian's when absent.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]})); then
  as_root=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 || die "missing packages (${missing[*]}) and not root; run this script as root"
    as_root=(sudo --preserve-env=DEBIAN_FRONTEND)
  fi
  say "installing ${#missing[@]} Debian package(s): ${missing[*]}"
  # A fresh image may have no package lists yet; refresh them once before installing.
  "${as_root[@]}" apt-get update -qq || die "apt-get update failed"
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    2> >(grep -v 'apt-utils is not installed' >&2) || die "apt-get install failed for: ${missing[*]}"
  say "Debian packages installed"
else
  say "Debian packages: all ${#packages[@]} present"
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 18)) || die "node $(node --version) is too old: s3rver's dependencies need node >= 18"

# s3rver: `npm ci` installs exactly the lock file. The stamp records which lock file and node produced
# tests/node_modules, so an unchanged tree is not reinstalled.
tests_dir=$repo/tests
stamp=$tests_dir/node_modules/.ferry-setup-stamp
want="$(sha256sum "$tests_dir/package-lock.json" | cut -d' ' -f1) node-$(node --version)"
if [[ -f $stamp && "$(cat "$stamp")" == "$want" && -f $tests_dir/node_modules/s3rver/bin/s3rver.js ]]; then
  say "s3rver $(node -p "require('$tests_dir/node_modules/s3rver/package.json').version"): present in tests/node_modules"
else
  say "installing s3rver into tests/node_modules (npm ci)"
  (cd "$tests_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci failed in $tests_dir"
  printf '%s\n' "$want" >"$stamp"
  say "s3rver $(node -p "require('$tests_dir/node_modules/s3rver/package.json').version") installed"
fi
