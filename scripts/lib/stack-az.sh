# shellcheck shell=bash
# `scripts/stack az`: the az CLI against a running stack. Sourced by scripts/stack.

# stack_az DIR AZ-ARGS...: runs az with a private configuration in DIR/az, set up on first use
# (and again whenever the stack's ARM endpoint or identity changed): the stack's cloud
# registered from its /metadata/endpoints and made active, logged in with the stack's managed
# identity. The exit status is az's.
stack_az() {
  local dir=${1%/} az=${VIBEDATA_AZ_BIN:-$REPO_ROOT/.venv-az/bin/az} stamp want
  shift
  [[ -f "$dir/env" ]] || die "no stack in $dir; run 'scripts/stack up --dir $dir' first"
  [[ -x "$az" ]] || die "the az CLI is not installed at $az; run scripts/setup (it installs .venv-az)"
  (
    set -e
    # shellcheck disable=SC1091
    source "$dir/env"
    curl -fsS --max-time 5 --cacert "$VIBEDATA_CA_FILE" "$VIBEDATA_EMULATOR_CONTROL/health" >/dev/null 2>&1 \
      || die "the stack in $dir does not answer at $VIBEDATA_EMULATOR_CONTROL; run 'scripts/stack up --dir $dir'"
    export AZURE_CONFIG_DIR="$dir/az"
    export REQUESTS_CA_BUNDLE="$VIBEDATA_CA_FILE"
    export AZURE_CORE_COLLECT_TELEMETRY=false AZURE_CORE_SURVEY_MESSAGE=false AZURE_CORE_NO_COLOR=true
    # The identity az logs in with is the stack's (App Service protocol), never an outer one.
    export IDENTITY_ENDPOINT IDENTITY_HEADER
    unset MSI_ENDPOINT MSI_SECRET AZURE_CLIENT_ID AZURE_CLIENT_SECRET AZURE_TENANT_ID
    export VIBEDATA_STACK_INVENTORY="$dir/inventory.json"
    export PYTHONPATH="$REPO_ROOT/scripts/lib/az-site${PYTHONPATH:+:$PYTHONPATH}"
    mkdir -p "$AZURE_CONFIG_DIR"
    stamp="$AZURE_CONFIG_DIR/.vibedata-stack"
    # az logs in as the deployer (the template's own principal, Owner of the managed resource
    # group): someone inspecting the stack is not held to the bootstrap identity's grants.
    want="$VIBEDATA_ARM_ENDPOINT $VIBEDATA_STACK_DEPLOYER_CLIENT_ID $VIBEDATA_SUBSCRIPTION_ID"
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
      local out
      "$az" cloud set --name AzureCloud >/dev/null 2>&1 || true
      "$az" cloud unregister --name VibedataStack >/dev/null 2>&1 || true
      out=$("$az" cloud register --name VibedataStack --endpoint-resource-manager "$VIBEDATA_ARM_ENDPOINT" 2>&1) \
        || die "az cloud register failed: $out"
      "$az" cloud set --name VibedataStack --only-show-errors >/dev/null
      out=$("$az" login --identity --client-id "$VIBEDATA_STACK_DEPLOYER_CLIENT_ID" --only-show-errors 2>&1) \
        || die "az login --identity failed: $out"
      "$az" account set --subscription "$VIBEDATA_SUBSCRIPTION_ID"
      printf '%s\n' "$want" >"$stamp"
    fi
    exec "$az" "$@"
  )
}
