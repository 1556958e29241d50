# Sourced by cross/build.sh and cross/smoke.sh: maps a Debian arch to the Rust target, the
# GNU triplet and the sysroot, and exports what cargo and pkg-config need to cross-build.
# shellcheck shell=bash
cross_arch=${1:?usage: ARCH (arm64|armhf)}
case "$cross_arch" in
  arm64) rust_target=aarch64-unknown-linux-gnu; triplet=aarch64-linux-gnu; qemu=qemu-aarch64 ;;
  armhf) rust_target=armv7-unknown-linux-gnueabihf; triplet=arm-linux-gnueabihf; qemu=qemu-arm ;;
  *) echo "unknown arch '$cross_arch' (arm64 or armhf)" >&2; exit 2 ;;
esac
cache=${SENTRIX_CACHE:-$HOME/.cache/sentrix}
sysroot="$cache/sysroot-$cross_arch"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
target_env=$(echo "$rust_target" | tr 'a-z-' 'A-Z_')
export PKG_CONFIG_ALLOW_CROSS=1
export PKG_CONFIG_SYSROOT_DIR="$sysroot"
export PKG_CONFIG_LIBDIR="$sysroot/usr/lib/$triplet/pkgconfig:$sysroot/usr/share/pkgconfig"
export "CARGO_TARGET_${target_env}_LINKER=$triplet-gcc"
# The ARMv8 AES/PMULL backends of `aes` and `polyval` (see .cargo/config.toml).
armv8_crypto=""
[ "$cross_arch" = arm64 ] && armv8_crypto=" --cfg aes_armv8 --cfg polyval_armv8"
export "CARGO_TARGET_${target_env}_RUSTFLAGS=-C link-arg=--sysroot=$sysroot$armv8_crypto"
binary="$CARGO_TARGET_DIR/$rust_target/release/sentrix"
