#!/usr/bin/env bash
# Run the cross-built binary under qemu-user against the sysroot's GStreamer:
# `sentrix --version` and `sentrix selftest` (synthetic source → ingest → checks).
#
#   cross/smoke.sh arm64|armhf        (after cross/build.sh ARCH)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=cross/env.sh
source "$here/env.sh" "${1:-}"
[ -x "$binary" ] || { echo "no $binary: run cross/build.sh $cross_arch first" >&2; exit 1; }
command -v "$qemu" >/dev/null || { echo "missing $qemu: apt-get install qemu-user" >&2; exit 1; }
# GStreamer must scan the target's plugins in-process (no fork of a host plugin scanner)
# and keep its registry apart from the host's.
export GST_REGISTRY_FORK=no
export GST_PLUGIN_SYSTEM_PATH="$sysroot/usr/lib/$triplet/gstreamer-1.0"
export GST_REGISTRY="$cache/gst-registry-$cross_arch.bin"
run() { "$qemu" -L "$sysroot" "$binary" "$@"; }
echo "== $cross_arch: sentrix --version"
run --version
echo "== $cross_arch: sentrix selftest"
start=$(date +%s)
run selftest
echo "== $cross_arch smoke passed in $(( $(date +%s) - start )) s"
