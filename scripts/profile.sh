#!/usr/bin/env bash
# Where the CPU goes, with perf (Debian's linux-perf): the top symbols and threads of
#   ingest  - the remux-only ingest child of `sentrix-bench ingest` (1080p15 4 Mbit/s)
#   record  - the recording child of `sentrix-bench record` (events, encrypted)
#   ingest-native, record-native - the same through the native RTSP client
#   detect  - `sentrix-bench detect` (YOLOX-nano through tract, one thread, 416)
# usage: scripts/profile.sh ingest|record|detect [seconds]   (run as root, or with
# kernel.perf_event_paranoid <= 1; the release binaries keep their symbols)
set -euo pipefail
what=${1:?usage: scripts/profile.sh ingest|record|ingest-native|record-native|detect [seconds]}
secs=${2:-30}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${SENTRIX_BENCH_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/sentrix/target}/release/sentrix-bench}
command -v perf >/dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 1; }
data=$(mktemp --suffix=.perf)
trap 'rm -f "$data"; kill $(jobs -p) 2>/dev/null || true' EXIT
child_of() { # $1: the child's command line pattern; waits for it to start
  for _ in $(seq 100); do pgrep -n -f "$1" && return; sleep 0.1; done
  echo "no process matches $1" >&2; exit 1
}
case "$what" in
  ingest | record | ingest-native | record-native)
    bench=${what%-native}
    client=gstreamer; [ "$bench" != "$what" ] && client=native
    "$bin" "$bench" --seconds $((secs + 10)) $([ "$bench" = ingest ] && echo --no-ffmpeg) >/dev/null 2>&1 &
    sleep 3
    pid=$(child_of "sentrix-bench $bench-client .*--rtsp-client $client" | head -1)
    perf record -q -F 1999 -g -p "$pid" -o "$data" -- sleep "$secs" 2>/dev/null ;;
  detect)
    perf record -q -F 1999 -g -o "$data" -- "$bin" detect --size 416 --runs 200 \
      --model "$here/tests/data/yolox_nano.onnx" "$here/tests/data/coco_000000001000.jpg" >/dev/null 2>&1 ;;
  *) echo "unknown profile '$what' (ingest, record, ingest-native, record-native or detect)" >&2; exit 2 ;;
esac
set +o pipefail # head closes the pipe early
# bench detect runs the onnxruntime peer as a child: report sentrix's own samples only.
only=(); [ "$what" = detect ] && only=(--comms sentrix-bench)
echo "== $what: top 10 symbols (self time)"
perf report -i "$data" "${only[@]}" --no-children --sort sym --stdio -g none 2>/dev/null | grep '%' | head -10
echo "== $what: by thread"
perf report -i "$data" "${only[@]}" --no-children --sort comm --stdio -g none 2>/dev/null | grep '%' | head -8
echo "== $what: by library"
perf report -i "$data" "${only[@]}" --no-children --sort dso --stdio -g none 2>/dev/null | grep '%' | head -8
