#!/usr/bin/env bash
# RSS of `sentrix run` (release build) with 4 demo cameras whose pipelines are restarted
# every 5 s (a SIGHUP after changing their bitrate: new streaming threads each time, as a
# camera flap makes), with glibc's memory pools bounded as sentrix bounds them (2) and
# unbounded (MALLOC_ARENA_MAX=16, glibc's default on 2 cores). Prints RSS after warm-up and
# at the end of each run.
# usage: scripts/bench-memory.sh [seconds]
set -euo pipefail
secs=${1:-120}
bin=${SENTRIX_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/sentrix/target}/release/sentrix}
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
write_config() { # $1 dir, $2 bitrate
  { printf 'detect:\n  enabled: false\nstorage:\n  recordings_dir: rec\n  database: db/sentrix.db\n'
    printf '  encryption:\n    key_file: clip.key\ncameras:\n'
    for c in a b c d; do
      printf '  - id: %s\n    url: demo://?width=640&height=360&fps=10&bitrate=%s\n' "$c" "$2"
    done; } > "$1/surveillance.yml"
}
measure() { # $1 label, then env assignments
  local label=$1; shift
  local work; work=$(mktemp -d)
  write_config "$work" 800
  env "$@" "$bin" run --config "$work/surveillance.yml" 2>"$work/log" &
  local pid=$!
  sleep 20
  local warm; warm=$(rss "$pid")
  local end=$((SECONDS + secs)) flips=0
  while [ $SECONDS -lt $end ]; do
    write_config "$work" $((800 + (flips % 2) * 100))
    kill -HUP "$pid"; flips=$((flips + 1)); sleep 5
  done
  sleep 5
  local end_kib; end_kib=$(rss "$pid")
  echo "$label: RSS after warm-up ${warm} KiB, after $flips restarts of 4 cameras ${end_kib} KiB"
  [ -z "${SENTRIX_BENCH_TABLE:-}" ] || printf '%s\t%s\t\t\n' \
    "RSS, 4 cameras 360p restarted $flips times, $label" \
    "$((warm / 1024)) MB warm, $((end_kib / 1024)) MB after" >> "$SENTRIX_BENCH_TABLE"
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$work"
}
measure "pools bounded (sentrix's default)"
measure "pools unbounded (MALLOC_ARENA_MAX=16)" MALLOC_ARENA_MAX=16
