#!/usr/bin/env bash
# Build a Debian package of sentrix for amd64 (native), arm64 or armhf (cross).
#
#   packaging/deb.sh amd64|arm64|armhf        → prints the path of the .deb
#
# Contents: /usr/bin/sentrix, the systemd unit, /etc/sentrix/surveillance.yml (a conffile:
# loopback bind, state under /var/lib/sentrix, no camera), docs; a postinst that creates
# the `sentrix` system user and its 0700 state dirs and starts the service only once the
# config has an enabled camera.
set -euo pipefail
arch=${1:?usage: packaging/deb.sh amd64|arm64|armhf}
here=$(cd "$(dirname "$0")" && pwd)
top="$here/.."
cache=${SENTRIX_CACHE:-$HOME/.cache/sentrix}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$top/Cargo.toml" | head -1)
case "$arch" in
  amd64)
    (cd "$top" && cargo build --release --locked --bin sentrix >&2)
    binary="$CARGO_TARGET_DIR/release/sentrix"; strip=strip ;;
  arm64) "$top/cross/build.sh" arm64 >&2; binary="$CARGO_TARGET_DIR/aarch64-unknown-linux-gnu/release/sentrix"; strip=aarch64-linux-gnu-strip ;;
  armhf) "$top/cross/build.sh" armhf >&2; binary="$CARGO_TARGET_DIR/armv7-unknown-linux-gnueabihf/release/sentrix"; strip=arm-linux-gnueabihf-strip ;;
  *) echo "unknown arch '$arch' (amd64, arm64, armhf)" >&2; exit 2 ;;
esac

# The glibc the binary needs, from its versioned symbols.
floor=$("${strip%strip}objdump" -T "$binary" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)

stage="$cache/deb/sentrix_${version}_${arch}"
rm -rf "$stage"
install -d -m 0755 "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" "$stage/etc/sentrix" \
  "$stage/usr/share/doc/sentrix/docs"
"$strip" -o "$stage/usr/bin/sentrix" "$binary"
chmod 0755 "$stage/usr/bin/sentrix"
install -m 0644 "$top/systemd/sentrix.service" "$stage/lib/systemd/system/sentrix.service"

# The shipped config with appliance paths and no camera: the installer adds theirs.
sed -e 's|^  tls_key: .*|  tls_key: /var/lib/sentrix/certs/server.key|' \
    -e 's|^  tls_cert: .*|  tls_cert: /var/lib/sentrix/certs/server.crt|' \
    -e 's|^  recordings_dir: .*|  recordings_dir: /var/lib/sentrix/recordings|' \
    -e 's|^  database: .*|  database: /var/lib/sentrix/sentrix.db|' \
    -e 's|^    key_file: .*|    key_file: /var/lib/sentrix/clip.key|' \
    -e '/^cameras:/,$d' "$top/surveillance.yml" > "$stage/etc/sentrix/surveillance.yml"
cat >> "$stage/etc/sentrix/surveillance.yml" <<'YML'
cameras: []
  # Add your cameras here, then: sentrix check-config && systemctl restart sentrix
  # - id: porch
  #   name: Porch
  #   url: rtsp://user:password@192.168.1.20:554/stream1
YML
chmod 0644 "$stage/etc/sentrix/surveillance.yml"
echo "/etc/sentrix/surveillance.yml" > "$stage/DEBIAN/conffiles"

install -d -m 0755 "$stage/usr/share/lintian/overrides"
cat > "$stage/usr/share/lintian/overrides/sentrix" <<'TXT'
# serde_yaml parses YAML with unsafe-libyaml, a Rust translation of libyaml compiled into
# the binary; there is no C libyaml to link against instead.
sentrix: embedded-library libyaml [usr/bin/sentrix]
# The native RTSP client (retina) recognises live555-based cameras by the "LIVE555
# Streaming Media" name in their SDP, to work around their TCP bug; no live555 code is in
# the binary.
sentrix: embedded-library liblivemedia [usr/bin/sentrix]
TXT
install -m 0644 "$top/README.md" "$stage/usr/share/doc/sentrix/README.md"
install -m 0644 "$top"/docs/*.md "$stage/usr/share/doc/sentrix/docs/"
# shellcheck source=packaging/doc-files.sh
source "$here/doc-files.sh"
write_doc_files "$stage" sentrix "$version"

cat > "$stage/DEBIAN/control" <<CTL
Package: sentrix
Version: $version
Architecture: $arch
Maintainer: sentrix maintainers <maintainers@sentrix.invalid>
Installed-Size: $(du -sk "$stage" | cut -f1)
Depends: libc6 (>= $floor), libgcc-s1, libglib2.0-0, libgstreamer1.0-0, libgstreamer-plugins-base1.0-0, libgstrtspserver-1.0-0, gstreamer1.0-plugins-base, gstreamer1.0-plugins-good, gstreamer1.0-plugins-bad, gstreamer1.0-libav, adduser
Recommends: gstreamer1.0-plugins-ugly
Section: video
Priority: optional
Homepage: https://sentrix.invalid/
Description: network video recorder for small boards
 sentrix pulls H.264/H.265 from RTSP cameras without re-encoding, records
 encrypted clips around events with pre- and post-roll, and runs under
 systemd with a watchdog. gstreamer1.0-plugins-ugly is needed only for the
 built-in demo camera, "sentrix selftest" and the clips made from
 cameras that e-mail their alarm pictures (x264enc).
CTL

cat > "$stage/DEBIAN/postinst" <<'SH'
#!/bin/sh
set -e
if [ "$1" = "configure" ]; then
    if ! getent passwd sentrix >/dev/null; then
        adduser --system --group --home /var/lib/sentrix --no-create-home --quiet sentrix
    fi
    install -d -m 0700 -o sentrix -g sentrix /var/lib/sentrix /var/log/sentrix
    # No default password: the dashboard stays off until a user exists. Run account
    # commands as the service user so the database stays theirs.
    if [ -z "$(runuser -u sentrix -- sentrix user list --config /etc/sentrix/surveillance.yml 2>/dev/null)" ]; then
        echo "sentrix: the dashboard starts once it has a user; add one with:"
        echo "  sudo -u sentrix sentrix user add NAME --role admin --config /etc/sentrix/surveillance.yml"
    fi
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null || true
        systemctl enable sentrix.service >/dev/null || true
        # Start only once there is something to record.
        if sentrix check-config --config /etc/sentrix/surveillance.yml 2>/dev/null | grep -q ', [1-9][0-9]* enabled'; then
            systemctl restart sentrix.service || true
        else
            echo "sentrix: add a camera to /etc/sentrix/surveillance.yml, then: systemctl start sentrix"
        fi
    fi
fi
exit 0
SH
cat > "$stage/DEBIAN/prerm" <<'SH'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = "remove" ]; then
    systemctl stop sentrix.service >/dev/null 2>&1 || true
fi
exit 0
SH
cat > "$stage/DEBIAN/postrm" <<'SH'
#!/bin/sh
set -e
if [ "$1" = "purge" ]; then
    # Recordings and the clip key stay unless the administrator removes /var/lib/sentrix.
    if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null || true; fi
fi
exit 0
SH
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"

out="$cache/deb/sentrix_${version}_${arch}.deb"
dpkg-deb --build --root-owner-group -Zxz "$stage" "$out" >&2
echo "$out"
