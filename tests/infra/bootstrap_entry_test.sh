#!/usr/bin/env bash
# Usage: tests/infra/bootstrap_entry_test.sh [BINARY]
#
# Tests scripts/bootstrap-entry.sh (the deploymentScript entry point) the way the container runs
# it: the binary is downloaded over HTTP from a local server (python3 -m http.server on
# 127.0.0.1), checked, started, then run. BINARY is the real vibedata-bootstrap (default
# target/debug/vibedata-bootstrap; scripts/test builds it first).
#
# Cases: success with argument order, the real binary's exit code and last line passed through,
# missing or bad configuration, download 404, connection refused, plain http refused, checksum
# mismatch, --version
# failing, and a binary that cannot start (an ELF whose loader is missing, as a glibc binary on
# the Alpine images up to azure-cli 2.63.0). No case prints the SAS token.
# Prints one line per case and "N passed, N failed" last; exits 1 if any failed.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ENTRY="$ROOT/scripts/bootstrap-entry.sh"
REAL_BIN="${1:-$ROOT/target/debug/vibedata-bootstrap}"
SAS="sv=2024-01-01&sig=TOPSECRETSIGNATURE"

TMP=$(mktemp -d)
SERVE="$TMP/serve"
mkdir -p "$SERVE"
SERVER_PID=""
cleanup() {
  [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

# The server prints its port once it listens; wait for that line, not for a time.
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$SERVE" >"$TMP/server.out" 2>"$TMP/server.err" &
SERVER_PID=$!
PORT=""
for _ in $(seq 1 100); do
  PORT=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$TMP/server.out" | head -n1)
  [[ -n "$PORT" ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
[[ -n "$PORT" ]] || { echo "http.server did not start: $(cat "$TMP/server.err")" >&2; exit 1; }
BASE="http://127.0.0.1:$PORT"

PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); printf 'ok   %s\n' "$1"; }
not_ok() { FAILED=$((FAILED + 1)); printf 'FAIL %s: %s\n' "$1" "$2"; }

# A stand-in binary that records how it was called; `--version` behaviour by $1.
stub() {
  local path=$1 version_rc=${2:-0}
  cat >"$path" <<EOF
#!/usr/bin/env bash
printf '%s\n' "\$*" >>"\${STUB_LOG:?}"
if [[ "\${1:-}" == --version ]]; then
  [[ $version_rc == 0 ]] && { echo "vibedata-bootstrap 0.0.0-stub (test)"; exit 0; }
  echo "stub: version failed" >&2; exit $version_rc
fi
echo "stub ran \$*"
exit 0
EOF
  chmod +x "$path"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# run_entry CASE ENV...: runs the entry script with only ENV (plus PATH/HOME), in a fresh work dir.
run_entry() {
  local name=$1; shift
  OUT="$TMP/$name.out"; ERR="$TMP/$name.err"; WORK="$TMP/$name.work"
  env -i PATH="$PATH" HOME="$TMP" STUB_LOG="$TMP/$name.log" BOOTSTRAP_WORK_DIR="$WORK" \
    BOOTSTRAP_DOWNLOAD_RETRIES=1 BOOTSTRAP_DOWNLOAD_TIMEOUT=30 BOOTSTRAP_ALLOW_HTTP=1 "$@" \
    bash "$ENTRY" >"$OUT" 2>"$ERR"
  RC=$?
  LAST=$(tail -n 1 "$ERR")
}

no_sas() { ! grep -q "TOPSECRET" "$OUT" "$ERR"; }

# --- cases ---------------------------------------------------------------------------------

case_success() {
  local n=success
  stub "$SERVE/ok"
  run_entry "$n" BOOTSTRAP_PHASE=artifacts BOOTSTRAP_BINARY_URL="$BASE/ok?$SAS" BOOTSTRAP_BINARY_SHA256="$(sha "$SERVE/ok")"
  local calls; calls=$(tr '\n' '|' <"$TMP/$n.log" 2>/dev/null)
  if [[ $RC -ne 0 ]]; then not_ok $n "exit $RC: $LAST"
  elif [[ "$calls" != "--version|run artifacts|" ]]; then not_ok $n "calls were '$calls'"
  elif ! grep -q "stub ran run artifacts" "$OUT"; then not_ok $n "the phase's stdout is missing"
  elif ! no_sas; then not_ok $n "printed the SAS token"
  else ok $n; fi
}

case_uppercase_digest() {
  local n=uppercase-digest
  stub "$SERVE/ok"
  local d; d=$(sha "$SERVE/ok")
  run_entry "$n" BOOTSTRAP_PHASE=health BOOTSTRAP_BINARY_URL="$BASE/ok" BOOTSTRAP_BINARY_SHA256="${d^^}"
  if [[ $RC -eq 0 ]]; then ok $n; else not_ok $n "exit $RC: $LAST"; fi
}

case_real_binary() {
  local n=real-binary
  if [[ ! -x "$REAL_BIN" ]]; then not_ok $n "$REAL_BIN not built (cargo build -p vibedata-bootstrap)"; return; fi
  cp "$REAL_BIN" "$SERVE/vibedata-bootstrap"
  # No VIBEDATA_* configuration: the real binary refuses with exit 2 and names what is missing.
  run_entry "$n" BOOTSTRAP_PHASE=health BOOTSTRAP_BINARY_URL="$BASE/vibedata-bootstrap?$SAS" \
    BOOTSTRAP_BINARY_SHA256="$(sha "$SERVE/vibedata-bootstrap")"
  if [[ $RC -ne 2 ]]; then not_ok $n "exit $RC, want the binary's 2: $LAST"
  elif ! grep -q "vibedata-bootstrap " "$OUT"; then not_ok $n "--version was not printed"
  elif [[ "$LAST" != *VIBEDATA_* ]]; then not_ok $n "last stderr line is not the binary's: $LAST"
  elif ! no_sas; then not_ok $n "printed the SAS token"
  else ok $n; fi
}

case_missing_config() {
  local n=missing-config
  run_entry "$n" BOOTSTRAP_PHASE=artifacts
  if [[ $RC -ne 2 ]]; then not_ok $n "exit $RC"
  elif [[ "$LAST" != *BOOTSTRAP_BINARY_URL*BOOTSTRAP_BINARY_SHA256* ]]; then not_ok $n "does not name both: $LAST"
  else ok $n; fi
}

case_bad_digest() {
  local n=bad-digest
  run_entry "$n" BOOTSTRAP_PHASE=artifacts BOOTSTRAP_BINARY_URL="$BASE/ok" BOOTSTRAP_BINARY_SHA256=abc123
  if [[ $RC -eq 2 && "$LAST" == *"not 64 hex digits"* ]]; then ok $n; else not_ok $n "exit $RC: $LAST"; fi
}

case_download_404() {
  local n=download-404
  run_entry "$n" BOOTSTRAP_PHASE=artifacts BOOTSTRAP_BINARY_URL="$BASE/absent?$SAS" \
    BOOTSTRAP_BINARY_SHA256="$(printf '0%.0s' {1..64})"
  if [[ $RC -ne 1 ]]; then not_ok $n "exit $RC: $LAST"
  elif [[ "$LAST" != *"download of $BASE/absent failed"*404* ]]; then not_ok $n "message: $LAST"
  elif ! no_sas; then not_ok $n "printed the SAS token"
  elif [[ -e "$WORK/vibedata-bootstrap" ]]; then not_ok $n "left a binary behind"
  else ok $n; fi
}

case_connection_refused() {
  local n=connection-refused
  # A port nothing listens on: bind one, note it, close it.
  local port; port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  run_entry "$n" BOOTSTRAP_PHASE=artifacts BOOTSTRAP_BINARY_URL="http://127.0.0.1:$port/x?$SAS" \
    BOOTSTRAP_BINARY_SHA256="$(printf 'a%.0s' {1..64})"
  if [[ $RC -ne 1 ]]; then not_ok $n "exit $RC: $LAST"
  elif [[ "$LAST" != *"download of http://127.0.0.1:$port/x failed"* ]]; then not_ok $n "message: $LAST"
  elif ! no_sas; then not_ok $n "printed the SAS token"
  else ok $n; fi
}

case_plain_http_refused() {
  local n=plain-http-refused
  stub "$SERVE/ok"
  # The default: a URL that would carry the SAS token in clear text is not fetched.
  run_entry "$n" BOOTSTRAP_ALLOW_HTTP= BOOTSTRAP_PHASE=artifacts BOOTSTRAP_BINARY_URL="$BASE/ok?$SAS" \
    BOOTSTRAP_BINARY_SHA256="$(sha "$SERVE/ok")"
  if [[ $RC -ne 1 ]]; then not_ok $n "exit $RC: $LAST"
  elif [[ "$LAST" != *"download of $BASE/ok failed"* ]]; then not_ok $n "message: $LAST"
  elif [[ -s "$TMP/$n.log" ]]; then not_ok $n "the binary was run"
  elif ! no_sas; then not_ok $n "printed the SAS token"
  else ok $n; fi
}

case_checksum_mismatch() {
  local n=checksum-mismatch
  stub "$SERVE/tampered"
  run_entry "$n" BOOTSTRAP_PHASE=artifacts BOOTSTRAP_BINARY_URL="$BASE/tampered?$SAS" \
    BOOTSTRAP_BINARY_SHA256="$(printf 'b%.0s' {1..64})"
  if [[ $RC -ne 2 ]]; then not_ok $n "exit $RC: $LAST"
  elif [[ "$LAST" != *"has SHA-256 $(sha "$SERVE/tampered"), but the template pins bbbb"* ]]; then not_ok $n "message: $LAST"
  elif [[ -s "$TMP/$n.log" ]]; then not_ok $n "the binary was run: $(cat "$TMP/$n.log")"
  elif ! no_sas; then not_ok $n "printed the SAS token"
  else ok $n; fi
}

case_version_fails() {
  local n=version-fails
  stub "$SERVE/broken" 3
  run_entry "$n" BOOTSTRAP_PHASE=runbooks BOOTSTRAP_BINARY_URL="$BASE/broken" BOOTSTRAP_BINARY_SHA256="$(sha "$SERVE/broken")"
  local calls; calls=$(tr '\n' '|' <"$TMP/$n.log" 2>/dev/null)
  if [[ $RC -ne 1 ]]; then not_ok $n "exit $RC: $LAST"
  elif [[ "$LAST" != *"cannot start on this image (--version exited 3: stub: version failed)"* ]]; then not_ok $n "message: $LAST"
  elif [[ "$calls" != "--version|" ]]; then not_ok $n "ran more than --version: '$calls'"
  else ok $n; fi
}

case_cannot_start() {
  local n=cannot-start
  # /bin/true with its ELF interpreter renamed: exec fails as for a glibc binary on musl.
  local interp; interp=$(readelf -l /bin/true 2>/dev/null | sed -n 's/.*interpreter: \(.*\)]/\1/p')
  [[ -n "$interp" ]] || interp=/lib64/ld-linux-x86-64.so.2
  local fake="${interp%?}X"
  INTERP="$interp" FAKE="$fake" python3 - /bin/true "$SERVE/noloader" <<'EOF'
import os, sys
data = open(sys.argv[1], "rb").read()
old, new = os.environ["INTERP"].encode(), os.environ["FAKE"].encode()
assert data.count(old) >= 1 and len(old) == len(new)
open(sys.argv[2], "wb").write(data.replace(old, new, 1))
EOF
  run_entry "$n" BOOTSTRAP_PHASE=database BOOTSTRAP_BINARY_URL="$BASE/noloader" BOOTSTRAP_BINARY_SHA256="$(sha "$SERVE/noloader")"
  if [[ $RC -ne 1 ]]; then not_ok $n "exit $RC: $LAST"
  elif [[ "$LAST" != *"cannot start on this image"*"glibc"*"azCliVersion 2.65.0 or later"* ]]; then not_ok $n "message: $LAST"
  else ok $n; fi
}

case_success
case_uppercase_digest
case_real_binary
case_missing_config
case_bad_digest
case_download_404
case_connection_refused
case_plain_http_refused
case_checksum_mismatch
case_version_fails
case_cannot_start

printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
(( FAILED == 0 ))
