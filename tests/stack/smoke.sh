#!/usr/bin/env bash
# Usage: tests/stack/smoke.sh ENV_FILE
#
# Checks that every service of a running local stack answers as docs/local-stack.md says:
# Azurite over HTTPS (a bearer token is accepted on blob), the publisher registry (basic auth),
# the customer registry (401 with the emulator's token realm), PostgreSQL (TLS verify-full,
# scram, as user vibedata), the emulator's health on its eight ports (and the publisher registry's referrers front) and the DNS stand-in (unless
# skipped).
# Prints one line per check; exits non-zero if any failed. scripts/test runs it.
set -uo pipefail

case "${1:-}" in
  ""|-h|--help) sed -n '2,/^[^#]/{/^#/!q;s/^# \{0,1\}//;p}' "$0"; [[ -n "${1:-}" ]]; exit ;;
esac
# shellcheck disable=SC1090
source "$1" || { echo "smoke: cannot read $1" >&2; exit 2; }
CA=$VIBEDATA_CA_FILE
P=$VIBEDATA_STACK_BASE_PORT
SKIP=$(sed -n 's/^SKIP=//p' "$VIBEDATA_STACK_DIR/stack.state" 2>/dev/null)
FAILS=0

check() {  # check NAME EXPECTED ACTUAL
  if [[ "$3" == "$2" ]]; then printf '  ok    %s\n' "$1"
  else printf '  FAIL  %s: expected %s, got %s\n' "$1" "$2" "$3"; FAILS=$((FAILS + 1)); fi
}
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$CA" "$@"; }
skipped() { [[ ",$SKIP," == *",$1,"* ]]; }
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

if ! skipped azurite; then
  now=$(date +%s)
  jwt="$(printf '{"alg":"RS256","typ":"JWT"}' | b64url).$(printf \
    '{"aud":"https://storage.azure.com","iss":"https://sts.windows.net/%s/","nbf":%d,"iat":%d,"exp":%d}' \
    "$VIBEDATA_TENANT_ID" $((now - 60)) $((now - 60)) $((now + 600)) | b64url).c2ln"
  check "azurite blob: bearer list containers" 200 \
    "$(code -H "Authorization: Bearer $jwt" -H 'x-ms-version: 2021-08-06' "$VIBEDATA_STORAGE_BLOB_URL?comp=list")"
  check "azurite queue: answers over https" 403 "$(code "https://127.0.0.1:$((P + 5))/devstoreaccount1?comp=list")"
  check "azurite table: answers over https" 403 "$(code "https://127.0.0.1:$((P + 6))/devstoreaccount1/Tables")"
fi

if ! skipped registry-publisher; then
  check "publisher registry: /v2/ without credentials" 401 "$(code "https://$VIBEDATA_PUBLISHER_REGISTRY/v2/")"
  check "publisher registry: /v2/ with basic auth" 200 \
    "$(code -u "$VIBEDATA_STACK_PUBLISHER_USER:$VIBEDATA_STACK_PUBLISHER_PASSWORD" "https://$VIBEDATA_PUBLISHER_REGISTRY/v2/")"
fi

if ! skipped registry-customer; then
  challenge=$(curl -s -D - -o /dev/null --cacert "$CA" "https://$VIBEDATA_ACR_LOGIN_SERVER/v2/" | tr -d '\r' \
    | sed -n 's/^[Ww]ww-[Aa]uthenticate: //p')
  check "customer registry: token challenge" \
    "Bearer realm=\"$VIBEDATA_ACR_AUTH_ENDPOINT/oauth2/token\",service=\"$VIBEDATA_ACR_NAME\"" "$challenge"
fi

if ! skipped postgres; then
  pw=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["secrets"]["postgres-password"])' \
    "$VIBEDATA_STACK_DIR/emulator.json")
  out=$(PGPASSWORD="$pw" psql -X -Atq "host=$VIBEDATA_POSTGRES_HOST port=$VIBEDATA_POSTGRES_PORT sslmode=verify-full \
    sslrootcert=$CA user=$VIBEDATA_POSTGRES_USER dbname=$VIBEDATA_POSTGRES_DATABASE" \
    -c "SELECT current_user || CASE WHEN ssl THEN ' tls' ELSE ' plain' END FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>&1)
  check "postgres: vibedata over TLS (verify-full)" "vibedata tls" "$out"
fi

if ! skipped emulator; then
  for p in 0 1 2 3 11 12 13 14 15; do
    check "emulator :$((P + p)) /_emulator/health" 200 "$(code "https://127.0.0.1:$((P + p))/_emulator/health")"
  done
  if ! skipped azurite; then
    # The storage front forwards what RBAC does not govern (here an anonymous list) as is.
    check "storage front: Azurite's own answer to an anonymous list" \
      "$(code "$VIBEDATA_STORAGE_BLOB_URL?comp=list")" "$(code "$VIBEDATA_STACK_STORAGE_FRONT?comp=list")"
  fi
  if ! skipped registry-publisher; then
    refs="https://$VIBEDATA_STACK_PUBLISHER_REFERRERS/v2/smoke/referrers/sha256:$(printf '0%.0s' {1..64})"
    check "publisher referrers front: without credentials" 401 "$(code "$refs")"
    check "publisher referrers front: an empty index with basic auth" 200 \
      "$(code -u "$VIBEDATA_STACK_PUBLISHER_USER:$VIBEDATA_STACK_PUBLISHER_PASSWORD" "$refs")"
    # A blob pushed through the front (its Location names the front) lands in the registry.
    pub=(-u "$VIBEDATA_STACK_PUBLISHER_USER:$VIBEDATA_STACK_PUBLISHER_PASSWORD")
    blob="smoke $(date +%s%N)"
    digest="sha256:$(printf '%s' "$blob" | sha256sum | cut -d' ' -f1)"
    loc=$(curl -s -D - -o /dev/null --cacert "$CA" "${pub[@]}" -X POST \
      "https://$VIBEDATA_STACK_PUBLISHER_REFERRERS/v2/smoke/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
    check "publisher referrers front: the upload Location names the front" \
      "https://$VIBEDATA_STACK_PUBLISHER_REFERRERS/" "${loc%%v2/*}"
    check "publisher referrers front: a blob PUT through it" 201 \
      "$(code "${pub[@]}" -X PUT -H 'Content-Type: application/octet-stream' --data-binary "$blob" "$loc&digest=$digest")"
    check "publisher registry: holds the blob pushed through the front" 200 \
      "$(code "${pub[@]}" -I "https://$VIBEDATA_PUBLISHER_REGISTRY/v2/smoke/blobs/$digest")"
  fi
fi

if ! skipped dns && [[ -s "$VIBEDATA_STACK_DIR/inventory.json" ]]; then
  name=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dns"][0]["name"])' "$VIBEDATA_STACK_DIR/inventory.json")
  check "dns stand-in: $name" 127.0.0.1 \
    "$(python3 "$(dirname "$0")/../../scripts/lib/dnsq.py" --server "$VIBEDATA_DNS_SERVER" "$name" 2>&1)"
fi

(( FAILS == 0 )) || { echo "smoke: $FAILS check(s) failed; logs in $VIBEDATA_STACK_DIR/logs" >&2; exit 1; }
