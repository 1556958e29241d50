#!/usr/bin/env bash
# Build a Debian bookworm sysroot for cross-compiling sentrix: the GStreamer -dev packages
# (headers, .pc files, link-time .so) and the runtime plugins that `cross/smoke.sh` needs
# under qemu-user. Extract-only mmdebstrap: no maintainer scripts run, no root in the chroot.
#
#   cross/sysroot.sh arm64|armhf [DIR]
#
# DIR defaults to $SENTRIX_CACHE/sysroot-ARCH ($SENTRIX_CACHE defaults to ~/.cache/sentrix).
# The mirror is read from the host's apt sources; set SENTRIX_MIRROR to override it.
set -euo pipefail
arch=${1:?usage: cross/sysroot.sh arm64|armhf [DIR]}
case "$arch" in
  arm64) triplet=aarch64-linux-gnu ;;
  armhf) triplet=arm-linux-gnueabihf ;;
  *) echo "unknown arch '$arch' (arm64 or armhf)" >&2; exit 2 ;;
esac
cache=${SENTRIX_CACHE:-$HOME/.cache/sentrix}
dir=${2:-$cache/sysroot-$arch}
stamp="$dir/.sentrix-sysroot-v1"
if [ -f "$stamp" ]; then
  echo "sysroot for $arch is ready at $dir"
  exit 0
fi

mirror=${SENTRIX_MIRROR:-}
if [ -z "$mirror" ]; then
  # deb822 sources first (Debian 12's default), then one-line sources.list entries.
  mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | awk 'BEGIN{RS=""} /Suites:[^\n]*bookworm( |\n|$)/ && /URIs:/ {for(i=1;i<=NF;i++) if($i=="URIs:"){print $(i+1); exit}}')
fi
if [ -z "$mirror" ]; then
  mirror=$(grep -hE '^deb +(\[[^]]*\] +)?[a-z]+://[^ ]+ +bookworm +' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
    | sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '{print $1; exit}')
fi
if [ -z "$mirror" ]; then
  echo "could not find a bookworm mirror in the host's apt sources; set SENTRIX_MIRROR" >&2
  exit 1
fi

pkgs=(
  libc6-dev libgcc-12-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav
)
echo "building $arch sysroot in $dir from $mirror"
mkdir -p "$(dirname "$dir")"
rm -rf "$dir.tmp"
mmdebstrap --variant=extract --architectures="$arch" --include="$(IFS=,; echo "${pkgs[*]}")" \
  bookworm "$dir.tmp" "$mirror"

# Extract mode runs no maintainer scripts, so the alternatives libav's BLAS/LAPACK users
# expect are missing: link them by hand.
lib="$dir.tmp/usr/lib/$triplet"
for so in libblas.so.3 liblapack.so.3; do
  sub=${so%%.so.3}; sub=${sub#lib}
  if [ ! -e "$lib/$so" ] && [ -e "$lib/$sub/$so" ]; then
    ln -s "$sub/$so" "$lib/$so"
  fi
done
# Absolute symlinks inside the sysroot (e.g. libm.so -> /lib/...) must point into it.
find "$dir.tmp" -type l -lname '/*' | while read -r l; do
  target=$(readlink "$l")
  ln -sfn "$dir${target}" "$l"
done
rm -rf "$dir"
mv "$dir.tmp" "$dir"
# The symlinks were made with the final path, so they are right after the move.
touch "$stamp"
echo "sysroot for $arch is ready at $dir ($(du -sh "$dir" | cut -f1))"
