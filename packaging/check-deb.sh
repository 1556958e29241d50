#!/usr/bin/env bash
# Inspect a built .deb: metadata and contents, lintian where installed, the Depends that
# must be there, and (for the host's architecture) an unpack into a scratch dpkg root.
#
#   packaging/check-deb.sh FILE.deb
set -euo pipefail
deb=${1:?usage: packaging/check-deb.sh FILE.deb}
dpkg-deb --info "$deb"
dpkg-deb --contents "$deb"
depends=$(dpkg-deb --field "$deb" Depends)
for need in libgstreamer1.0-0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav libgstrtspserver-1.0-0; do
  case ", $depends," in *", $need"[,\ ]*) ;; *) echo "Depends lacks $need: $depends" >&2; exit 1 ;; esac
done
contents=$(dpkg-deb --contents "$deb")
for f in ./usr/bin/sentrix ./lib/systemd/system/sentrix.service ./etc/sentrix/surveillance.yml; do
  grep -q " $f\$" <<<"$contents" || { echo "missing $f" >&2; exit 1; }
done
[ "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)" = "/etc/sentrix/surveillance.yml" ] \
  || { echo "surveillance.yml is not a conffile" >&2; exit 1; }
# The appliance carries no bench, attack tool or test-server launcher (they are
# sentrix-bench and the dev-only test kit): none of their strings is in the binary.
bin_strings=$(dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/bin/sentrix | strings)
for s in "slow-header senders" "password guesses from" "mosquitto_passwd" "s3s-fs" \
         "ingest-client" "record-client" "make-clip" "sentrix-bench"; do
  if grep -qF "$s" <<<"$bin_strings"; then echo "the sentrix binary holds bench string '$s'" >&2; exit 1; fi
done
echo "no bench strings in usr/bin/sentrix"
if command -v lintian >/dev/null; then
  # Errors fail the check; warnings are printed. Suppressed: tags about the missing
  # Debian source package and man page, which an upstream binary package does not have.
  lintian --fail-on error --suppress-tags no-manual-page,binary-without-manpage,statically-linked-binary "$deb"
else
  echo "lintian not installed; skipped"
fi
if [ "$(dpkg-deb --field "$deb" Architecture)" = "$(dpkg --print-architecture)" ]; then
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
  touch "$root/var/lib/dpkg/status"
  dpkg --root="$root" --force-depends --force-not-root --unpack "$deb" >/dev/null
  "$root/usr/bin/sentrix" --version
  # --unpack leaves conffiles as *.dpkg-new until configure.
  conf="$root/etc/sentrix/surveillance.yml"
  [ -f "$conf" ] || conf="$conf.dpkg-new"
  "$root/usr/bin/sentrix" check-config --config "$conf"
  echo "unpacked into a scratch root: OK"
fi
echo "deb check passed: $deb"
