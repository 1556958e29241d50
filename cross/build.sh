#!/usr/bin/env bash
# Cross-build a release `sentrix` (or `sentrix-bench`) for a Raspberry Pi / Jetson class board.
#
#   cross/build.sh arm64|armhf [sentrix|sentrix-bench]
#
# Needs the cross gcc (gcc-aarch64-linux-gnu / gcc-arm-linux-gnueabihf), the Rust target
# (added here with rustup if missing) and a sysroot (built here by cross/sysroot.sh if
# missing). Prints the binary's path, stripped size and the shared libraries it needs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=cross/env.sh
source "$here/env.sh" "${1:-}"
bin=${2:-sentrix}
case "$bin" in sentrix | sentrix-bench) ;; *) echo "unknown binary '$bin' (sentrix or sentrix-bench)" >&2; exit 2 ;; esac
binary="$CARGO_TARGET_DIR/$rust_target/release/$bin"
"$here/sysroot.sh" "$cross_arch" >/dev/null
if ! rustup target list --installed | grep -qx "$rust_target"; then
  rustup target add "$rust_target"
fi
command -v "$triplet-gcc" >/dev/null || { echo "missing $triplet-gcc: apt-get install gcc-$triplet" >&2; exit 1; }
cd "$here/.."
start=$(date +%s)
cargo build --release --locked --target "$rust_target" -p "$bin" --bin "$bin"
echo "built $binary in $(( $(date +%s) - start )) s"
stripped="$binary.stripped"
"$triplet-strip" -o "$stripped" "$binary"
echo "stripped size: $(stat -c %s "$stripped") bytes"
echo "NEEDED: $("$triplet-readelf" -d "$binary" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')"
echo "glibc floor: $("$triplet-objdump" -T "$binary" | grep -o 'GLIBC_[0-9.]*' | sort -V | tail -1)"
