# Sourced by packaging/deb.sh and deb-bench.sh: the copyright file and changelog Debian
# policy wants in /usr/share/doc/PACKAGE.
# shellcheck shell=bash

# write_doc_files STAGE PACKAGE VERSION
write_doc_files() {
  local stage=$1 package=$2 version=$3
  cat > "$stage/usr/share/doc/$package/copyright" <<'TXT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: sentrix

Files: *
Copyright: the sentrix authors
License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
TXT
  gzip -9n -c > "$stage/usr/share/doc/$package/changelog.gz" <<TXT
$package ($version) stable; urgency=medium

  * Package of $package $version.

 -- sentrix maintainers <maintainers@sentrix.invalid>  $(date -R -d @0)
TXT
}
