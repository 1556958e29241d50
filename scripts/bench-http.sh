#!/usr/bin/env bash
# HTTP benchmark of a running sentrix (release build), on loopback:
#   - /api/events requests/s and latency percentiles with a session cookie, and with HTTP
#     Basic on every request (which must not pay PBKDF2 each time), by wrk;
#   - decrypt-on-serve throughput of a 1 GB clip (`sentrix-bench make-clip`; BIG_MB sets
#     the size), and the time to first byte of a Range request in its middle, by curl.
# usage: scripts/bench-http.sh [seconds]   (needs wrk and curl: apt-get install wrk curl)
set -euo pipefail
secs=${1:-10}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${SENTRIX_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/sentrix/target}/release/sentrix}
bench_bin=${SENTRIX_BENCH_BIN:-$(dirname "$bin")/sentrix-bench}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/surveillance.yml" <<YML
network:
  api_port: $port
detect:
  enabled: false
record:
  pre_detection_buffer: 1
  post_detection_buffer: 20
storage:
  recordings_dir: rec
  database: db/sentrix.db
  # The 1 GB clip must survive a nearly full build machine's retention.
  retention:
    min_free_percent: 1
  encryption:
    key_file: clip.key
cameras:
  - id: demo
    url: demo://?width=1280&height=720&fps=15&bitrate=6000&pattern=snow
YML
pw="bench password 123"
echo "$pw" | "$bin" user add bench --role admin --password-stdin --config "$work/surveillance.yml" >/dev/null
# A 1 GB recording (real H.264, sealed like any clip) for the decrypt and Range figures.
"$bench_bin" make-clip --config "$work/surveillance.yml" --camera demo --mb "${BIG_MB:-1024}" 2>/dev/null
"$bin" run --config "$work/surveillance.yml" 2>"$work/log" &
pid=$!
base="https://localhost:$port"
for _ in $(seq 50); do curl -skf "$base/healthz" >/dev/null && break; sleep 0.2; done
sleep 2
# One recording of ~21 s at up to 6 Mbit/s to serve.
curl -sk -u "bench:$pw" -H "Origin: $base" -X POST "$base/api/cameras/demo/trigger" >/dev/null
sleep 28
# /auth/verify always opens a session (other Basic requests within a minute are served
# from the credential cache without one).
cookie=$(curl -sk -u "bench:$pw" -H "Origin: $base" -X POST -c - -o /dev/null "$base/auth/verify" | awk '/__Host-sentrix_session/ {print $7}')
[ -n "$cookie" ] || { echo "no session cookie" >&2; exit 1; }
basic=$(printf 'bench:%s' "$pw" | base64 -w0)
# A row of `make bench`'s table (crates/bench/src/table.rs): figure, sentrix, peer, ratio.
table() { [ -z "${SENTRIX_BENCH_TABLE:-}" ] || printf '%s\t%s\t\t\n' "$1" "$2" >> "$SENTRIX_BENCH_TABLE"; }
events_wrk() { # $1 label, $2 header
  local out; out=$(wrk -t2 -c16 -d"${secs}s" --latency -H "$2" "$base/api/events")
  echo "$out" | grep -E 'Requests/sec|50%|99%|Non-2xx' || true
  table "HTTPS /api/events, 16 connections, $1" \
    "$(echo "$out" | awk '/Requests\/sec/ {r = $2} / 99%/ {p = $2} END {printf "%.0f req/s, p99 %s", r, p}')"
}
echo "== /api/events, session cookie, 2 threads, 16 connections, ${secs} s"
events_wrk "session cookie" "Cookie: __Host-sentrix_session=$cookie"
echo "== /api/events, Basic on every request"
events_wrk "Basic on every request" "Authorization: Basic $basic"
clip=$(curl -sk -b "__Host-sentrix_session=$cookie" "$base/api/clips" | python3 -c 'import json,sys; c=max(json.load(sys.stdin)["clips"], key=lambda c: c["bytes"]); print(c["id"], c["bytes"])')
read -r id bytes <<<"$clip"
echo "== clip $id: $bytes bytes"
speed=$(curl -sk -b "__Host-sentrix_session=$cookie" -o /dev/null -w '%{speed_download}' "$base/clips/$id.mp4")
echo "full download: $speed B/s"
table "HTTPS download of a sealed $((bytes / 1000000)) MB clip (decrypt on serve)" \
  "$(awk -v s="$speed" 'BEGIN {printf "%.0f MB/s", s / 1e6}')"
mid=$((bytes / 2))
for _ in 1 2 3; do
  curl -sk -b "__Host-sentrix_session=$cookie" -H "Range: bytes=$mid-$((mid + 65535))" -o /dev/null \
    -w 'Range 64 KiB at the middle: first byte after %{time_starttransfer} s (connect+TLS %{time_appconnect} s)\n' "$base/clips/$id.mp4"
done
