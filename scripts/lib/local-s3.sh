# Shared by scripts/demo.sh and bench scripts: two local S3 servers, rclone and ferryd configs for
# them, and a ferryd in the background. Source it after defining:
#   repo (the checkout), work (a temp dir), pids (an array the caller's cleanup kills), die().
# Every wait is bounded (20 s).

# One S3 server: s3rver 3.7.1 with SigV4, Content-MD5 and payload hashes really checked
# (tests/support/s3rver_strict.js). -p 0 lets the kernel choose a free port; s3rver prints it.
# Sets $port (not a $(...) subshell, so the pid reaches the cleanup list). Extra args go to s3rver.
start_s3rver() {
  local name=$1
  shift
  mkdir -p "$work/$name-data"
  : >"$work/s3rver-$name.log"
  node "$repo/tests/support/s3rver_strict.js" -d "$work/$name-data" -a 127.0.0.1 -p 0 "$@" \
    >"$work/s3rver-$name.log" 2>&1 &
  pids+=($!)
  port=''
  for _ in $(seq 200); do
    port=$(sed -n 's/^S3rver listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/s3rver-$name.log" || true)
    [[ -n $port ]] && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || die "s3rver ($name) exited at start: $(cat "$work/s3rver-$name.log")"
    sleep 0.1
  done
  die "s3rver ($name) did not start within 20 s"
}

# rclone remotes src and dst for two s3rver ports, into FILE.
write_rclone_config() {
  local file=$1 src_port=$2 dst_port=$3 side
  : >"$file"
  for side in "src:$src_port" "dst:$dst_port"; do
    printf '[%s]\ntype = s3\nprovider = Other\naccess_key_id = S3RVER\nsecret_access_key = S3RVER\n' "${side%%:*}" >>"$file"
    printf 'endpoint = http://127.0.0.1:%s\nregion = us-east-1\nforce_path_style = true\n\n' "${side##*:}" >>"$file"
  done
}

# A ferryd config with remotes src and dst for two s3rver ports, socket and state in $work.
write_ferryd_config() {
  local file=$1 src_port=$2 dst_port=$3 side
  printf 'socket    = "%s"\nstate_dir = "%s"\nlog_level = "info"\n' "$work/ferryd.sock" "$work/state" >"$file"
  for side in "src:$src_port" "dst:$dst_port"; do
    printf '\n[remotes.%s]\nendpoint          = "http://127.0.0.1:%s"\n' "${side%%:*}" "${side##*:}" >>"$file"
    printf 'region            = "us-east-1"\npath_style        = true\n' >>"$file"
    printf 'access_key_id     = "S3RVER"\nsecret_access_key = "S3RVER"\n' >>"$file"
  done
}

# Starts FERRYD with CONFIG in the background (log in $work/ferryd.log) and waits for its socket.
# Sets $ferryd_pid.
start_ferryd() {
  local ferryd=$1 config=$2
  env -u AWS_CA_BUNDLE "$ferryd" --config "$config" >"$work/ferryd.log" 2>&1 &
  ferryd_pid=$!
  pids+=("$ferryd_pid")
  for _ in $(seq 200); do
    [[ -S $work/ferryd.sock ]] && return 0
    kill -0 "$ferryd_pid" 2>/dev/null || die "ferryd exited at start: $(cat "$work/ferryd.log")"
    sleep 0.1
  done
  die "ferryd did not open its socket within 20 s"
}
