#!/usr/bin/env bash
# The dashboard's TLS as an installer's scanner sees it: starts `sentrix run` (release
# binary, no camera, one user so the dashboard serves) on a loopback port and runs
# Debian's testssl.sh against it. Fails on any HIGH or CRITICAL finding except the two a
# self-signed certificate has by design (its chain of trust and its revocation: there is
# no CA to ask); docs/security.md explains the self-signed model.
#
#   scripts/testssl-check.sh            (SENTRIX_BIN: the binary; default the release one)
set -euo pipefail
bin=${SENTRIX_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/sentrix/target}/release/sentrix}
command -v testssl >/dev/null || { echo "testssl is missing: apt-get install testssl.sh" >&2; exit 1; }
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/surveillance.yml" <<YML
network:
  api_port: $port
storage:
  recordings_dir: rec
  database: db/sentrix.db
  encryption:
    key_file: clip.key
cameras: []
YML
echo "testssl check password 1" | "$bin" user add scan --role viewer --password-stdin --config "$work/surveillance.yml" >/dev/null
"$bin" run --config "$work/surveillance.yml" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do
  grep -q "dashboard on" "$work/log" && break
  kill -0 "$pid" || { cat "$work/log" >&2; exit 1; }
  sleep 0.1
done
start=$(date +%s)
# --nodns none and an IP literal: no DNS lookup at all; nothing leaves loopback (the certificate names no
# OCSP or CRL address for testssl to fetch).
testssl --quiet --color 0 --nodns none --warnings off --jsonfile "$work/scan.json" \
  "https://127.0.0.1:$port" > "$work/scan.txt" || true
echo "testssl ran in $(( $(date +%s) - start )) s"
python3 - "$work/scan.json" <<'PY'
import json, sys
findings = json.load(open(sys.argv[1]))
by_design = {"cert_chain_of_trust", "cert_revocation", "cert_trust", "cert_ocspURL",
             "cert_crlDistributionPoints", "cert_ocspRevoked", "OCSP_stapling"}
bad, shown = [], []
for f in findings:
    sev = f.get("severity", "")
    if sev in ("HIGH", "CRITICAL", "MEDIUM", "LOW"):
        shown.append(f"{sev:8} {f['id']}: {f.get('finding', '')}")
    if sev in ("HIGH", "CRITICAL") and f["id"] not in by_design:
        bad.append(f"{sev} {f['id']}: {f.get('finding', '')}")
print("\n".join(shown) or "no finding of LOW or above")
if not findings:
    sys.exit("testssl produced no findings: the scan did not run")
if bad:
    sys.exit("testssl findings that fail the check:\n" + "\n".join(bad))
print(f"testssl check passed ({len(findings)} checks)")
PY
