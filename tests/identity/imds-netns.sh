#!/usr/bin/env bash
# Usage: unshare --net -- tests/identity/imds-netns.sh OUT_DIR BOOTSTRAP_BINARY
#
# The production identity path (tests/imds.rs runs this): inside a network namespace of its own,
# 169.254.169.254 is put on `lo`, the stack starts with the emulator also serving IMDS there on
# port 80, and `run artifacts` runs as deploymentScripts runs it: no IDENTITY_ENDPOINT or
# IDENTITY_HEADER, the identity named only by AZ_SCRIPTS_USER_ASSIGNED_IDENTITY, the outputs
# written to AZ_SCRIPTS_OUTPUT_PATH. Microsoft's Python SDK then asks IMDS for a token too.
# Leaves in OUT_DIR: outputs.json, journal.json (the emulator's), python-token.txt ("ok" + the
# audience of the token it got), run.log. The stack is stopped on exit.
set -euo pipefail
out=$1
bootstrap=$2
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dir="$out/stack"

# A namespace of our own starts with `lo` down and nothing else.
ip link set lo up
ip addr add 169.254.169.254/32 dev lo

trap '"$repo/scripts/stack" down --dir "$dir" --purge >/dev/null 2>&1 || true' EXIT
# Any port will do: nothing else listens in this namespace.
VIBEDATA_STACK_IMDS=169.254.169.254:80 VIBEDATA_STACK_SKIP=postgres,dns \
  "$repo/scripts/stack" up --dir "$dir" --base-port 18400 >"$out/stack.log" 2>&1
# shellcheck disable=SC1091
source "$dir/env"
"$repo/scripts/sample-release" --push >"$out/sample-release.log" 2>&1

identity=$(jq -r '.identity.resourceId' "$dir/emulator.json")
# What deploymentScripts gives the container; nothing of the App Service protocol.
unset IDENTITY_ENDPOINT IDENTITY_HEADER VIBEDATA_IDENTITY_CLIENT_ID
export AZ_SCRIPTS_USER_ASSIGNED_IDENTITY=$identity
export AZ_SCRIPTS_OUTPUT_PATH=$out/outputs.json
rc=0
"$bootstrap" run artifacts >"$out/run.log" 2>&1 || rc=$?

curl -sS --fail --cacert "$VIBEDATA_CA_FILE" "$VIBEDATA_EMULATOR_CONTROL/journal" >"$out/journal.json"

# Microsoft's own client, unmodified, against the same IMDS listener.
"$repo/.venv/bin/python" - "$(jq -r '.identity.clientId' "$dir/emulator.json")" >"$out/python-token.txt" <<'PY'
import base64, json, sys
from azure.identity import ManagedIdentityCredential
token = ManagedIdentityCredential(client_id=sys.argv[1]).get_token("https://vault.azure.net/.default").token
claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
print("ok", claims["aud"])
PY
exit "$rc"
