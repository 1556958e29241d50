#!/usr/bin/env bash
# Cross-build an arm64 `sentrix` with a lower glibc floor than Debian 12's, for boards on
# older distributions: JetPack 5 (Ubuntu 20.04) and Raspberry Pi OS bullseye, glibc 2.31.
#
#   cross/zigbuild.sh [GLIBC]      (default 2.31)
#
# cargo-zigbuild links with zig, which carries stubs for every glibc version: the binary
# asks only for symbol versions up to GLIBC. GStreamer's headers, .pc files and link-time
# .so files still come from the bookworm sysroot that cross/sysroot.sh builds; on the board
# the binary loads the board's own GStreamer (1.16 on focal, 1.18 on bullseye).
# Prints the binary's path, stripped size and glibc floor, as cross/build.sh does.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
glibc=${1:-2.31}
# shellcheck source=cross/env.sh
source "$here/env.sh" arm64
"$here/sysroot.sh" arm64 >/dev/null
if ! command -v cargo-zigbuild >/dev/null || ! python3 -m ziglang version >/dev/null 2>&1; then
  pip install --quiet ziglang cargo-zigbuild
fi
rustup target list --installed | grep -qx "$rust_target" || rustup target add "$rust_target"
cd "$here/.."
# A target dir of its own, so the zig-linked build never replaces cross/build.sh's objects.
export CARGO_TARGET_DIR="$cache/target-zig"
# zig is the linker and C compiler here (cargo-zigbuild sets both): drop env.sh's gcc and
# its --sysroot, which would link against bookworm's glibc 2.36 and raise the floor.
unset "CARGO_TARGET_${target_env}_LINKER"
libdir="$sysroot/usr/lib/$triplet"
# bookworm's GStreamer libraries themselves name glibc symbols newer than GLIBC; only the
# binary's own references must stay at or below it, so those are allowed to stay
# unresolved at link time (the board's own libraries resolve them at run time).
export "CARGO_TARGET_${target_env}_RUSTFLAGS=-L $libdir -C link-arg=-Wl,-rpath-link,$libdir \
-C link-arg=-Wl,-rpath-link,$sysroot/lib/$triplet -C link-arg=-Wl,--allow-shlib-undefined \
--cfg aes_armv8 --cfg polyval_armv8"
start=$(date +%s)
cargo zigbuild --release --locked --target "$rust_target.$glibc" --bin sentrix
out="$CARGO_TARGET_DIR/$rust_target/release/sentrix"
echo "built $out in $(( $(date +%s) - start )) s"
"$triplet-strip" -o "$out.stripped" "$out"
echo "stripped size: $(stat -c %s "$out.stripped") bytes"
echo "glibc floor: $("$triplet-objdump" -T "$out" | grep -o 'GLIBC_[0-9.]*' | sort -V | tail -1)"
