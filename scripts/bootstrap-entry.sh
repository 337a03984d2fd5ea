#!/usr/bin/env bash
# The deploymentScript entry point of every bootstrap step (the scriptContent of
# infra/modules/bootstrap-step.bicep). It runs in the azure-cli image as root, after the
# service has signed in with vibedata-UAMI:
#   1. downloads vibedata-bootstrap from the package's artifacts (with retries),
#   2. checks its SHA-256 against the one the template pins,
#   3. runs `vibedata-bootstrap --version`, so a binary that cannot start on this image fails
#      with a message that says so,
#   4. execs `vibedata-bootstrap run <phase>`: its outputs, exit code and last stderr line are
#      the step's.
#
# Environment (set by bootstrap-step.bicep; the VIBEDATA_* configuration passes through):
#   BOOTSTRAP_PHASE            the step to run (artifacts, runbooks, database, ...)
#   BOOTSTRAP_BINARY_URL       where to download the binary; a secureValue, it carries the SAS token
#   BOOTSTRAP_BINARY_SHA256    the binary's SHA-256, 64 hex digits
#   BOOTSTRAP_WORK_DIR         where to put the binary (default: a new temporary directory)
#   BOOTSTRAP_DOWNLOAD_RETRIES retries of the download (default 5), BOOTSTRAP_DOWNLOAD_TIMEOUT
#                              seconds for the whole download (default 600)
#   BOOTSTRAP_ALLOW_HTTP=1     also accept http:// (the tests' local server); otherwise only
#                              https://, since the URL carries the SAS token
#
# Exit codes: 2 bad configuration or a binary that is not the pinned one (nothing ran);
# 1 the download failed or the binary cannot start; otherwise the phase's own exit code.
# The URL's query string (the SAS token) is never printed.
set -euo pipefail

prog="bootstrap-entry"
fail() {
  local code=$1; shift
  printf '%s: %s\n' "$prog" "$*" >&2
  exit "$code"
}
log() { printf '%s: %s\n' "$prog" "$*"; }

phase="${BOOTSTRAP_PHASE:-}"
url="${BOOTSTRAP_BINARY_URL:-}"
want="${BOOTSTRAP_BINARY_SHA256:-}"
retries="${BOOTSTRAP_DOWNLOAD_RETRIES:-5}"
max_time="${BOOTSTRAP_DOWNLOAD_TIMEOUT:-600}"
protocols="=https"
[[ "${BOOTSTRAP_ALLOW_HTTP:-}" == 1 ]] && protocols="=https,http"

missing=()
[[ -n "$phase" ]] || missing+=(BOOTSTRAP_PHASE)
[[ -n "$url" ]] || missing+=(BOOTSTRAP_BINARY_URL)
[[ -n "$want" ]] || missing+=(BOOTSTRAP_BINARY_SHA256)
(( ${#missing[@]} == 0 )) || fail 2 "bad configuration: ${missing[*]} not set (bootstrap-step.bicep sets them)"
[[ "$phase" =~ ^[a-z][a-z0-9-]{0,30}$ ]] || fail 2 "bad configuration: BOOTSTRAP_PHASE '$phase' is not a phase id"
want="${want,,}"
[[ "$want" =~ ^[0-9a-f]{64}$ ]] || fail 2 "bad configuration: BOOTSTRAP_BINARY_SHA256 is not 64 hex digits"
[[ "$retries" =~ ^[0-9]+$ ]] || fail 2 "bad configuration: BOOTSTRAP_DOWNLOAD_RETRIES '$retries' is not a number"
[[ "$max_time" =~ ^[0-9]+$ ]] || fail 2 "bad configuration: BOOTSTRAP_DOWNLOAD_TIMEOUT '$max_time' is not a number"

# What may be shown of the URL: scheme, host and path, without the SAS token.
shown="${url%%\?*}"

work="${BOOTSTRAP_WORK_DIR:-}"
if [[ -z "$work" ]]; then
  work=$(mktemp -d)
fi
mkdir -p "$work" || fail 1 "cannot create $work"
bin="$work/vibedata-bootstrap"
rm -f "$bin" "$bin.part"

log "phase $phase: downloading $shown"
curl_err="$work/curl.err"
if ! curl --fail --silent --show-error --location --proto "$protocols" --proto-redir "$protocols" \
    --retry "$retries" --retry-delay 2 --retry-all-errors \
    --connect-timeout 20 --max-time "$max_time" \
    --output "$bin.part" "$url" 2>"$curl_err"; then
  # curl names the failure (DNS, refused, HTTP status) without the query string.
  reason=$(tail -n 1 "$curl_err" | sed 's/^curl: //; s/?[^ ]*//g')
  fail 1 "download of $shown failed after $retries retries: ${reason:-no reason given}"
fi

have=$(sha256sum "$bin.part" | cut -d' ' -f1)
if [[ "$have" != "$want" ]]; then
  rm -f "$bin.part"
  fail 2 "the binary from $shown has SHA-256 $have, but the template pins $want; nothing was run"
fi
mv "$bin.part" "$bin"
chmod 0755 "$bin"

# A glibc binary on a musl image (azure-cli 2.63.0 and older are Alpine) fails here, before
# anything runs: the loader is missing, so exec reports "not found" for a file that exists.
rc=0
version=$("$bin" --version 2>"$work/version.err") || rc=$?
if (( rc != 0 )); then
  detail=$(head -n 1 "$work/version.err")
  fail 1 "vibedata-bootstrap cannot start on this image (--version exited $rc${detail:+: $detail}); it needs x86-64 Linux with glibc 2.36 or later, i.e. azCliVersion 2.65.0 or later"
fi
log "phase $phase: $version"

exec "$bin" run "$phase"
