#!/usr/bin/env bash
# Installs the Debian packages sentrix needs, idempotently. As root it runs apt-get;
# otherwise it prints the exact command and fails.
#
#   scripts/deps.sh [run|test|bench|cross]...     (default: run)
#
# run:   GStreamer runtime + headers to build sentrix and run it with the demo camera
# test:  + ffmpeg (bench peer and clip checks), systemd (systemd-analyze), lintian,
#        Mosquitto and aiosmtpd (real MQTT and SMTP servers for the notification tests), and
#        OpenCV's vtest.avi (real pedestrian footage) taken from Debian's opencv-doc package
#        into ~/.cache/sentrix/testdata (see tests/data/README.md), and s3s-fs (a real
#        S3-compatible server, from crates.io) into ~/.cache/sentrix/s3s-fs for the off-site tests
# bench: + wrk (the HTTPS load generator) and python3-venv (make bench installs the
#        onnxruntime peer from PyPI into its own venv: Debian 12's python3 refuses a
#        system-wide pip install)
# cross: + cross compilers, qemu-user and mmdebstrap for arm64/armhf builds
set -euo pipefail
# Runs "$@", saying what is being done first and how long it took after (these steps take
# minutes on a fresh box: nobody should think it hangs).
timed() {
  local what=$1 start
  shift
  start=$(date +%s)
  echo "deps: $what…"
  "$@"
  echo "deps: $what took $(( $(date +%s) - start )) s"
}
run_pkgs=(
  pkg-config gcc make
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools
)
# chromium + chromium-driver: the dashboard's browser test (driven by python3-selenium);
# testssl.sh: the TLS scan of the dashboard (scripts/testssl-check.sh, a CI step).
test_pkgs=(ffmpeg systemd lintian chromium chromium-driver python3-selenium mosquitto python3-aiosmtpd testssl.sh)
bench_pkgs=(wrk python3-venv)
cross_pkgs=(gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf qemu-user mmdebstrap)

want=()
for set in "${@:-run}"; do
  case "$set" in
    run) want+=("${run_pkgs[@]}") ;;
    test) want+=("${run_pkgs[@]}" "${test_pkgs[@]}") ;;
    bench) want+=("${bench_pkgs[@]}") ;;
    cross) want+=("${cross_pkgs[@]}") ;;
    *) echo "unknown package set '$set' (run, test, bench, cross)" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# De-duplicate while keeping order.
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk 'NF && !seen[$0]++')
if [ ${#missing[@]} -gt 0 ]; then
  cmd="apt-get install -y ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing: ${missing[*]}"
    timed "updating the package lists" apt-get update -q
    timed "installing ${#missing[@]} Debian packages" \
      env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    # The tests start their own brokers on free ports: the system-wide one that the
    # mosquitto package enables is not wanted on a build box.
    if printf '%s\n' "${missing[@]}" | grep -qx mosquitto && command -v systemctl >/dev/null; then
      systemctl disable --now mosquitto >/dev/null 2>&1 || true
    fi
  else
    echo "missing Debian packages; run as root:" >&2
    echo "  sudo apt-get update && sudo $cmd" >&2
    exit 1
  fi
fi
if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust >= 1.95 with rustup (Debian 12's rustc is too old)," >&2
  echo "then open a new shell so ~/.cargo/bin is on PATH." >&2
  exit 1
fi
rustc_minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
if [ "${rustc_minor:-0}" -lt 95 ]; then
  echo "rustc $(rustc --version) is older than 1.95: rustup update" >&2
  exit 1
fi

# Real footage for the detection tests: OpenCV's vtest.avi (768x576, 10 fps, 80 s of people
# walking), shipped in Debian's opencv-doc. Only that file is taken from the .deb: the
# package itself (270 MB of docs) is not installed.
fetch_vtest() {
  local cache="${SENTRIX_TESTDATA_CACHE:-$HOME/.cache/sentrix/testdata}"
  local want="$cache/vtest.avi"
  [ -s "$want" ] && return 0
  mkdir -p "$cache"
  local work
  work=$(mktemp -d)
  if ! (cd "$work" && apt-get download -q opencv-doc >/dev/null 2>&1); then
    [ "$(id -u)" -eq 0 ] && apt-get update -q >/dev/null
    (cd "$work" && apt-get download -q opencv-doc) || {
      echo "cannot download Debian's opencv-doc package for tests/data's vtest.avi" >&2
      return 1
    }
  fi
  dpkg-deb --fsys-tarfile "$work"/opencv-doc_*.deb |
    tar -xO --wildcards '*/examples/data/vtest.avi' >"$work/vtest.avi"
  [ -s "$work/vtest.avi" ] || { echo "opencv-doc has no examples/data/vtest.avi" >&2; return 1; }
  mv "$work/vtest.avi" "$want"
  rm -rf "$work"
  echo "test footage: $want"
}
# A real S3-compatible server for the off-site tests: s3s-fs from crates.io, built once
# (about 2 minutes) and cached. 0.14.1 is the last release that builds with Rust 1.95.
S3S_FS_VERSION=0.14.1
install_s3s_fs() {
  local root="${SENTRIX_S3S_ROOT:-$HOME/.cache/sentrix/s3s-fs}"
  if [ -x "$root/bin/s3s-fs" ] && "$root/bin/s3s-fs" --version 2>/dev/null | grep -q "$S3S_FS_VERSION"; then
    return 0
  fi
  echo "building s3s-fs $S3S_FS_VERSION (the off-site tests' S3 server) into $root"
  cargo install -q --locked "s3s-fs@$S3S_FS_VERSION" --features binary --root "$root"
}
# An ONVIF camera this project did not write, for tests/it/onvif.rs: ipycam 1.3.0 (MIT)
# from PyPI, its wheel checked against this sha256 and unpacked (its video pipeline's
# numpy and OpenCV are not needed: the test loads its ONVIF modules alone).
IPYCAM_VERSION=1.3.0
IPYCAM_SHA256=3f12b70ed4e9717508fc387874a0c9fddf94a2a193dc88c2340efb867ff5d745
fetch_ipycam() {
  local want="${SENTRIX_IPYCAM_DIR:-$HOME/.cache/sentrix/ipycam-$IPYCAM_VERSION}"
  [ -f "$want/ipycam/onvif.py" ] && return 0
  local work
  work=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$work" "ipycam==$IPYCAM_VERSION"
  local wheel="$work/ipycam-$IPYCAM_VERSION-py3-none-any.whl"
  echo "$IPYCAM_SHA256  $wheel" | sha256sum -c --quiet - || {
    echo "the ipycam wheel's sha256 is not the one pinned in scripts/deps.sh" >&2
    return 1
  }
  mkdir -p "$want"
  python3 -m zipfile -e "$wheel" "$want"
  rm -rf "$work"
  echo "ONVIF test camera: $want"
}
for set in "${@:-run}"; do
  if [ "$set" = test ]; then
    fetch_ipycam
    [ -s "${SENTRIX_TESTDATA_CACHE:-$HOME/.cache/sentrix/testdata}/vtest.avi" ] ||
      timed "extracting the test footage (vtest.avi from opencv-doc)" fetch_vtest
    timed_s3s=""
    [ -x "${SENTRIX_S3S_ROOT:-$HOME/.cache/sentrix/s3s-fs}/bin/s3s-fs" ] || timed_s3s=1
    if [ -n "$timed_s3s" ]; then
      timed "building s3s-fs (about 2 minutes)" install_s3s_fs
    else
      install_s3s_fs
    fi
  fi
done
exit 0
