#!/usr/bin/env bash
# Build and check the Debian package of `sentrix-bench`, the benchmarks, for amd64 (native),
# arm64 or armhf (cross), so a board's owner can measure their own board beside ffmpeg and
# onnxruntime. The appliance package (packaging/deb.sh) carries none of it.
#
#   packaging/deb-bench.sh amd64|arm64|armhf      → prints the path of the .deb
#
# Contents: /usr/bin/sentrix-bench, /usr/share/sentrix-bench/ort_detect.py (the onnxruntime
# peer of `sentrix-bench detect`), docs/performance.md. It depends on the sentrix package
# of the same version (the benches that measure a whole `sentrix run` start /usr/bin/sentrix).
set -euo pipefail
arch=${1:?usage: packaging/deb-bench.sh amd64|arm64|armhf}
here=$(cd "$(dirname "$0")" && pwd)
top="$here/.."
cache=${SENTRIX_CACHE:-$HOME/.cache/sentrix}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$top/crates/bench/Cargo.toml" | head -1)
case "$arch" in
  amd64)
    (cd "$top" && cargo build --release --locked -p sentrix-bench --bin sentrix-bench >&2)
    binary="$CARGO_TARGET_DIR/release/sentrix-bench"; strip=strip ;;
  arm64) "$top/cross/build.sh" arm64 sentrix-bench >&2; binary="$CARGO_TARGET_DIR/aarch64-unknown-linux-gnu/release/sentrix-bench"; strip=aarch64-linux-gnu-strip ;;
  armhf) "$top/cross/build.sh" armhf sentrix-bench >&2; binary="$CARGO_TARGET_DIR/armv7-unknown-linux-gnueabihf/release/sentrix-bench"; strip=arm-linux-gnueabihf-strip ;;
  *) echo "unknown arch '$arch' (amd64, arm64, armhf)" >&2; exit 2 ;;
esac
floor=$("${strip%strip}objdump" -T "$binary" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)

name=sentrix-bench
stage="$cache/deb/${name}_${version}_${arch}"
rm -rf "$stage"
install -d -m 0755 "$stage/DEBIAN" "$stage/usr/bin" "$stage/usr/share/$name" \
  "$stage/usr/share/doc/$name" "$stage/usr/share/lintian/overrides"
"$strip" -o "$stage/usr/bin/$name" "$binary"
chmod 0755 "$stage/usr/bin/$name"
install -m 0755 "$top/scripts/ort_detect.py" "$stage/usr/share/$name/ort_detect.py"
install -m 0644 "$top/docs/performance.md" "$stage/usr/share/doc/$name/performance.md"
cat > "$stage/usr/share/lintian/overrides/$name" <<TXT
# Rust translations compiled into the binary (see packaging/deb.sh for the same in sentrix).
$name: embedded-library libyaml [usr/bin/$name]
$name: embedded-library liblivemedia [usr/bin/$name]
TXT
# shellcheck source=packaging/doc-files.sh
source "$here/doc-files.sh"
write_doc_files "$stage" "$name" "$version"
cat > "$stage/DEBIAN/control" <<CTL
Package: $name
Version: $version
Architecture: $arch
Maintainer: sentrix maintainers <maintainers@sentrix.invalid>
Installed-Size: $(du -sk "$stage" | cut -f1)
Depends: sentrix (= $version), libc6 (>= $floor), libgcc-s1, libglib2.0-0, libgstreamer1.0-0, libgstreamer-plugins-base1.0-0, libgstrtspserver-1.0-0, gstreamer1.0-plugins-ugly, python3
Recommends: ffmpeg, wrk, curl
Suggests: mosquitto, python3-aiosmtpd
Section: video
Priority: optional
Homepage: https://sentrix.invalid/
Description: benchmarks for the sentrix network video recorder
 sentrix-bench measures sentrix on the board it runs on: RTSP ingest and
 recording beside ffmpeg, detection beside onnxruntime (installed by the user
 with pip), sealing throughput, the dashboard under load and memory over time.
 Not needed to run sentrix.
CTL
out="$cache/deb/${name}_${version}_${arch}.deb"
dpkg-deb --build --root-owner-group -Zxz "$stage" "$out" >&2
dpkg-deb --info "$out" >&2
if command -v lintian >/dev/null; then
  lintian --fail-on error --suppress-tags no-manual-page,binary-without-manpage,statically-linked-binary "$out" >&2
fi
if [ "$arch" = "$(dpkg --print-architecture)" ]; then
  "$stage/usr/bin/$name" --version >&2
fi
echo "$out"
