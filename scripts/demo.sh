#!/usr/bin/env bash
# The demo: two local S3 servers, one copy job through ferryd, and rclone checking the result.
# Everything runs on loopback in a temp dir that is removed at the end (FERRY_KEEP_DEMO=1 keeps it).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

bold=$'\e[1m' green=$'\e[32m' red=$'\e[31m' reset=$'\e[0m'
[[ -t 1 ]] || bold='' green='' red='' reset=''
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$reset"; }
show() { printf '%s$ %s%s\n' "$bold" "$*" "$reset"; }
die() { printf '%sdemo failed: %s%s\n' "$red" "$*" "$reset" >&2; exit 1; }

step "Installing what is missing and building (scripts/setup-deps.sh, scripts/build.sh)"
bash "$repo/scripts/setup-deps.sh"
mkdir -p "$repo/build"
build_log=$repo/build/demo-build.log
echo "building into build/ (the first build takes several minutes; log: build/demo-build.log)"
bash "$repo/scripts/build.sh" >"$build_log" 2>&1 || { tail -n 40 "$build_log" >&2; die "build failed (log above)"; }
echo "built: build/daemon/ferryd, build/daemon/ferryctl"

ferryd=$repo/build/daemon/ferryd
ferryctl=$repo/build/daemon/ferryctl
for bin in "$ferryd" "$ferryctl"; do
  [[ -x $bin ]] || die "$bin was not built"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-demo.XXXXXX")
pids=()
cleanup() {
  local rc=$?
  set +e
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  # Bounded grace, then SIGKILL whatever is left.
  for _ in $(seq 50); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  wait 2>/dev/null
  if ((rc != 0)); then
    if [[ -s $work/ferryd.log ]]; then
      printf '\n--- last lines of ferryd.log ---\n' >&2
      tail -n 30 "$work/ferryd.log" >&2
    fi
    for log in "$work"/s3rver-*.log; do
      grep -qi error "$log" 2>/dev/null || continue
      printf '\n--- errors in %s ---\n' "$(basename "$log")" >&2
      grep -i error "$log" | tail -n 5 >&2
    done
  fi
  if [[ -n ${FERRY_KEEP_DEMO:-} ]]; then
    echo "kept $work"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=lib/local-s3.sh
source "$repo/scripts/lib/local-s3.sh"

step "Starting two S3 servers (s3rver) on loopback"
start_s3rver source
src_port=$port
start_s3rver destination
dst_port=$port
echo "source:      http://127.0.0.1:$src_port   (data in $work/source-data)"
echo "destination: http://127.0.0.1:$dst_port   (data in $work/destination-data)"

# rclone is the independent client: it creates buckets, uploads samples and checks the result.
# AWS_CA_BUNDLE (if set) makes rclone's S3 SDK fail on plain HTTP, so it is removed for rclone only.
write_rclone_config "$work/rclone.conf" "$src_port" "$dst_port"
rclone_() { env -u AWS_CA_BUNDLE timeout 120 rclone --config "$work/rclone.conf" "$@"; }

src_bucket=demo-source dst_bucket=demo-destination prefix=photos
step "Creating buckets and uploading sample objects with rclone"
sample=$work/sample
mkdir -p "$sample/2024/summer" "$sample/2024/winter" "$sample/notes"
echo "Hello from Ferry." >"$sample/README.txt"
printf 'beach %s\n' $(seq 1 2000) >"$sample/2024/summer/beach.txt"
head -c $((3 * 1024 * 1024)) /dev/urandom >"$sample/2024/summer/sunset.raw"
head -c $((12 * 1024 * 1024)) /dev/urandom >"$sample/2024/winter/snow.raw"
head -c 1 /dev/urandom >"$sample/notes/one-byte.bin"
: >"$sample/notes/empty.txt"
echo "a key with spaces & unicode" >"$sample/notes/Grüße aus Köln.txt"
show "rclone mkdir src:$src_bucket && rclone mkdir dst:$dst_bucket"
{ rclone_ mkdir "src:$src_bucket" && rclone_ mkdir "dst:$dst_bucket"; } || die "rclone could not create the buckets"
show "rclone copy $sample src:$src_bucket/$prefix"
rclone_ copy "$sample" "src:$src_bucket/$prefix" || die "rclone could not upload the samples"
show "rclone ls src:$src_bucket"
rclone_ ls "src:$src_bucket"

step "Starting ferryd"
write_ferryd_config "$work/ferryd.toml" "$src_port" "$dst_port"
sed 's/^./    &/' "$work/ferryd.toml"
show "ferryd --config $work/ferryd.toml   (in the background; log in ferryd.log)"
start_ferryd "$ferryd" "$work/ferryd.toml"
SOCK=$work/ferryd.sock
echo "ferryd is listening on \$SOCK = $SOCK"

step "Copying src:$src_bucket/$prefix to dst:$dst_bucket/$prefix with ferryctl"
show "ferryctl --socket \$SOCK copy src:$src_bucket/$prefix dst:$dst_bucket/$prefix --wait"
timeout 300 "$ferryctl" --socket "$SOCK" copy "src:$src_bucket/$prefix" "dst:$dst_bucket/$prefix" --wait ||
  die "ferryctl copy failed"
show "ferryctl --socket \$SOCK jobs"
timeout 60 "$ferryctl" --socket "$SOCK" jobs || die "ferryctl jobs failed"

step "Checking the destination against the source with rclone (an independent client)"
show "rclone check src:$src_bucket/$prefix dst:$dst_bucket/$prefix"
if rclone_ check "src:$src_bucket/$prefix" "dst:$dst_bucket/$prefix" 2>&1 | sed 's/^.*NOTICE: //'; then
  printf '\n%sDemo passed: every object arrived, with matching size and MD5.%s\n' "$green" "$reset"
else
  die "rclone check found differences between source and destination"
fi
