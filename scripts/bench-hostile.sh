#!/usr/bin/env bash
# A hostile LAN against a running sentrix (release build) on loopback: legitimate request
# latency p50/p99 while 1,000 idle connections are held and while 500 slow-header senders
# are active, then 10,000 password guesses from 16 addresses (successes, PBKDF2 checks,
# server CPU). Runs `sentrix-bench hostile` (crates/bench/src/hostile.rs) against it.
# usage: scripts/bench-hostile.sh [seconds per phase]
set -euo pipefail
secs=${1:-10}
bin=${SENTRIX_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/sentrix/target}/release/sentrix}
bench_bin=${SENTRIX_BENCH_BIN:-$(dirname "$bin")/sentrix-bench}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/surveillance.yml" <<YML
network:
  api_port: $port
detect:
  enabled: false
storage:
  recordings_dir: rec
  database: db/sentrix.db
  encryption:
    key_file: clip.key
cameras:
  - id: demo
    url: demo://?width=640&height=360&fps=10&bitrate=800
YML
pw="bench password 123"
echo "$pw" | "$bin" user add bench --role admin --password-stdin --config "$work/surveillance.yml" >/dev/null
"$bin" run --config "$work/surveillance.yml" 2>"$work/log" &
pid=$!
for _ in $(seq 50); do curl -skf "https://localhost:$port/healthz" >/dev/null && break; sleep 0.2; done
sleep 2
SENTRIX_BENCH_PASSWORD="$pw" "$bench_bin" hostile --port "$port" --cert "$work/certs/server.crt" \
  --user bench --pid "$pid" --seconds "$secs"
kill -0 "$pid" || { echo "sentrix died during the bench" >&2; tail -20 "$work/log" >&2; exit 1; }
echo "server log: $(wc -c < "$work/log") bytes; descriptors now $(ls /proc/$pid/fd | wc -l)"
