#!/usr/bin/env bash
# Benchmark: ferryd's peak memory and throughput copying many small objects plus a few large ones
# between two local S3 servers (strict s3rver), with default [transfer] settings. Builds nothing: it uses
# $FERRY_BUILD/daemon/{ferryd,ferryctl} (default build/). Prints "peak RSS: N MiB" (ferryd's VmHWM), the
# job's duration and throughput, checks the result with rclone, and exits non-zero if the copy or the
# check failed (or, with FERRY_BENCH_MAX_RSS_MIB set, if the peak exceeded it).
#
# Workload (overridable): SMALL_COUNT x SMALL_MIB MiB objects + BIG_COUNT x BIG_MIB MiB objects,
# default 1000 x 1 MiB + 2 x 300 MiB. Needs about 4 x the workload in free space under $TMPDIR.
# FERRY_KEEP_BENCH=1 keeps the work directory (logs, the RSS samples in rss.tsv).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${FERRY_BUILD:-$repo/build}
ferryd=$build/daemon/ferryd
ferryctl=$build/daemon/ferryctl
small_count=${SMALL_COUNT:-1000}
small_mib=${SMALL_MIB:-1}
big_count=${BIG_COUNT:-2}
big_mib=${BIG_MIB:-300}
copy_timeout=${FERRY_BENCH_TIMEOUT:-1800}
max_rss_mib=${FERRY_BENCH_MAX_RSS_MIB:-}

die() { printf 'transfer_rss: %s\n' "$*" >&2; exit 1; }
for bin in "$ferryd" "$ferryctl"; do
  [[ -x $bin ]] || die "$bin is missing: build first (scripts/build.sh), or set FERRY_BUILD to a build directory"
done
for tool in node rclone openssl split awk; do
  command -v "$tool" >/dev/null || die "$tool is not installed (scripts/setup-deps.sh)"
done
[[ -f $repo/tests/node_modules/s3rver/bin/s3rver.js ]] || die "s3rver is not installed: run scripts/setup-deps.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench.XXXXXX")
pids=()
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local rc=$?
  set +e
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for _ in $(seq 50); do  # bounded grace, then SIGKILL
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  wait 2>/dev/null
  if ((rc != 0)) && [[ -s $work/ferryd.log ]]; then
    printf '\n--- last lines of ferryd.log ---\n' >&2
    tail -n 30 "$work/ferryd.log" >&2
  fi
  if [[ -n ${FERRY_KEEP_BENCH:-} ]]; then
    echo "kept $work"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# A strict s3rver (tests/support/s3rver_strict.js) on a free port; sets $port. -s: no per-request log, so
# the servers spend their time serving.
# shellcheck source=../scripts/lib/local-s3.sh
source "$repo/scripts/lib/local-s3.sh"

start_s3rver source -s
src_port=$port
start_s3rver destination -s
dst_port=$port

write_rclone_config "$work/rclone.conf" "$src_port" "$dst_port"
rclone_() { env -u AWS_CA_BUNDLE -u RCLONE_CONFIG timeout "$copy_timeout" rclone --config "$work/rclone.conf" "$@"; }

# Deterministic, incompressible bytes at GB/s: AES-CTR of zeros with a fixed key, one key per stream.
stream() {
  openssl enc -aes-128-ctr -K "$1" -iv 00000000000000000000000000000000 -in /dev/zero 2>/dev/null || true
}
echo "generating ${small_count} x ${small_mib} MiB + ${big_count} x ${big_mib} MiB"
gen=$work/gen
mkdir -p "$gen/small" "$gen/big"
if ((small_count > 0)); then
  stream 000102030405060708090a0b0c0d0e0f | head -c $((small_count * small_mib * 1048576)) |
    split -b $((small_mib * 1048576)) -a 5 -d - "$gen/small/obj-"
fi
for i in $(seq 1 "$big_count"); do
  stream "$(printf '%032x' "$((i + 1000))")" | head -c $((big_mib * 1048576)) >"$gen/big/big-$i.bin"
done
total_objects=$((small_count + big_count))
total_bytes=$(((small_count * small_mib + big_count * big_mib) * 1048576))

echo "uploading to the source server (rclone copy --transfers 8)"
{ rclone_ mkdir src:bench && rclone_ mkdir dst:bench; } || die "rclone could not create the buckets"
rclone_ copy "$gen" src:bench/data --transfers 8 || die "rclone could not upload the workload"
rm -rf "$gen"  # the servers hold the data now

write_ferryd_config "$work/ferryd.toml" "$src_port" "$dst_port"
start_ferryd "$ferryd" "$work/ferryd.toml"

# kB from /proc/PID/status.
status_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$ferryd_pid/status" 2>/dev/null || true; }
idle_rss_kb=$(status_kb VmRSS)

# VmRSS every 100 ms while the job runs (rss.tsv: seconds since start, kB), for the shape of the curve.
sampler() {
  local start
  start=$(now)
  while kill -0 "$ferryd_pid" 2>/dev/null; do
    printf '%s\t%s\n' "$(awk -v a="$(now)" -v b="$start" 'BEGIN { printf "%.1f", a - b }')" "$(status_kb VmRSS)"
    sleep 0.1
  done
}
sampler >"$work/rss.tsv" &
sampler_pid=$!
pids+=("$sampler_pid")

echo "copying with ferryd (default [transfer] settings)"
t0=$(now)
set +e
timeout "$copy_timeout" "$ferryctl" --socket "$work/ferryd.sock" --json copy src:bench/data dst:bench/data --wait \
  >"$work/job.json" 2>"$work/ferryctl.err"
copy_rc=$?
set -e
t1=$(now)
peak_kb=$(status_kb VmHWM)
peak_kb=${peak_kb:-0}
idle_rss_kb=${idle_rss_kb:-0}
kill "$sampler_pid" 2>/dev/null || true
max_sampled_kb=$(awk -F'\t' '$2 > m { m = $2 } END { print m + 0 }' "$work/rss.tsv")

job=$(head -n 1 "$work/job.json")
field() { sed -n "s/.*\"$1\":{[^}]*\"$2\":\([0-9]*\).*/\1/p" <<<"$job"; }
state=$(sed -n 's/.*"state":"\([a-z]*\)".*/\1/p' <<<"$job")
done_objects=$(field objects "done")
failed_objects=$(field objects failed)
done_bytes=$(field bytes "done")
seconds=$(awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')
throughput=$(awk -v b="${done_bytes:-0}" -v s="$seconds" 'BEGIN { printf "%.1f", (s > 0 ? b / 1048576 / s : 0) }')

echo
echo "objects: ${done_objects:-?} of $total_objects done, ${failed_objects:-?} failed ($(mib "$total_bytes") MiB in all)"
echo "job: ${state:-unknown} (ferryctl exit $copy_rc)"
echo "duration: $seconds s (ferryctl copy --wait, listing included)"
echo "throughput: $throughput MiB/s"
echo "peak RSS: $((peak_kb / 1024)) MiB (VmHWM; idle $((idle_rss_kb / 1024)) MiB, highest sampled VmRSS $((max_sampled_kb / 1024)) MiB)"

failed=0
if ((copy_rc != 0)) || [[ $state != succeeded ]]; then
  echo "FAILED: the copy did not succeed" >&2
  cat "$work/ferryctl.err" >&2
  failed=1
fi

echo "checking with rclone check --download (byte for byte)"
if rclone_ check --download src:bench/data dst:bench/data >"$work/check.log" 2>&1; then
  grep -E 'differences found|matching files' "$work/check.log" | sed 's/^.*NOTICE: //'
else
  echo "FAILED: rclone check found differences" >&2
  grep -E 'ERROR|NOTICE' "$work/check.log" | tail -n 20 >&2
  failed=1
fi

if [[ -n $max_rss_mib ]] && ((peak_kb / 1024 > max_rss_mib)); then
  echo "FAILED: peak RSS $((peak_kb / 1024)) MiB is above FERRY_BENCH_MAX_RSS_MIB=$max_rss_mib" >&2
  failed=1
fi
echo "RESULT transfer_rss objects=$total_objects bytes=$total_bytes seconds=$seconds throughput_mib_s=$throughput" \
  "peak_rss_mib=$((peak_kb / 1024)) ok=$((1 - failed))"
exit "$failed"
