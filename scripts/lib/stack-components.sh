# shellcheck shell=bash
# One start function per stack component (see docs/local-stack.md). Each is idempotent: a
# component whose recorded process still runs is left alone. Needs common.sh, proc.sh,
# stack-certs.sh, and STACK_DIR, BASE_PORT, READY_TIMEOUT, the secrets from ensure_secrets.

STACK_TENANT_ID="7d1c3f0e-5b0a-4c35-9a51-0d5f6c2e8a01"
STACK_SUBSCRIPTION_ID="3b8f9d2a-61c4-4e0b-8f7a-2c9e5d4b1a02"
STACK_IDENTITY_CLIENT_ID="5e2a7c91-0d3b-4f68-a1c4-9b7e6d5f3a03"
STACK_IDENTITY_PRINCIPAL_ID="9c4e1b7d-2a6f-4d83-b5e0-3f1a8c6d2b04"
# The deployer: the principal that deploys the template (Owner of the managed resource group).
# Tests set the platform up and inspect it with it; the grant table never restricts it.
STACK_DEPLOYER_CLIENT_ID="0f6b2d84-7c1e-4a39-b8d5-6e3a9c1f7b05"
STACK_DEPLOYER_PRINCIPAL_ID="a87d3e15-4b9c-4f20-9e6a-1c5b8d2f4e06"
STACK_RESOURCE_GROUP="mrg-vibedata-local"
STACK_ACR_NAME="vibedatacustomer"
STACK_AUTOMATION_ACCOUNT="aa-vibedata-local"
STACK_TOKEN_ISSUER="vibedata-emulator"

# port_free NAME PORT: fail clearly when another process already listens on PORT.
port_free() {
  ! port_open "$2" || die "port $2 for $1 is already in use by another process; choose another --base-port"
}

# component_ports NAME: the ports a component listens on.
component_ports() {
  case "$1" in
    emulator) emulator_ports ;;
    azurite) echo "$((BASE_PORT + 4)) $((BASE_PORT + 5)) $((BASE_PORT + 6))" ;;
    registry-publisher) echo "$((BASE_PORT + 7))" ;;
    registry-customer) echo "$((BASE_PORT + 8))" ;;
    postgres) echo "$((BASE_PORT + 9))" ;;
    dns) echo "$((BASE_PORT + 10))" ;;
  esac
}

# component_check NAME: fail before anything starts if NAME's program is missing.
component_check() {
  case "$1" in
    postgres) [[ -x "$PG_BIN/postgres" ]] || die "PostgreSQL 15 not found in $PG_BIN; run scripts/setup"
              (( EUID == 0 )) || die "starting postgres needs root (it runs as user postgres); or set VIBEDATA_STACK_SKIP=postgres" ;;
    azurite) [[ -f "$AZURITE_JS" ]] || die "Azurite not installed at ${AZURITE_JS#"$REPO_ROOT"/}; run scripts/setup"
             need_cmd node ;;
    registry-publisher) need_cmd docker-registry htpasswd ;;
    registry-customer) need_cmd docker-registry ;;
    dns) need_cmd dnsmasq flock ;;
    emulator) [[ -x "$(emulator_bin)" ]] || die "emulator binary $(emulator_bin) not found; build it (cargo build -p vibedata-emulator), set VIBEDATA_EMULATOR_BIN, or skip it with VIBEDATA_STACK_SKIP=emulator" ;;
  esac
}

emulator_bin() { printf '%s\n' "${VIBEDATA_EMULATOR_BIN:-$REPO_ROOT/target/debug/vibedata-emulator}"; }

# emulator_ports: the ports of the emulator's listeners (emulator/src/listeners.rs places them
# from listen.base), as the binary reads DIR/emulator.json.
emulator_ports() {
  local ports
  ports=$("$(emulator_bin)" --config "$STACK_DIR/emulator.json" --listeners) || die "the emulator could not read $STACK_DIR/emulator.json"
  awk '{print $2}' <<<"$ports" | xargs
}

# port_ranges "P1 P2 ...": "19400-19403,19411" (consecutive ports as a range) for the summary line.
port_ranges() {
  awk '{ out = ""; i = 1
         while (i <= NF) { j = i; while (j < NF && $(j + 1) == $j + 1) j++
                           out = out (out == "" ? "" : ",") (j > i ? $i "-" $j : $i); i = j + 1 }
         print out }' <<<"$1"
}

# ready_line NAME PORTS START_MS: the one-line summary of a service.
ready_line() {
  printf '  %-20s %-28s ready in %s (pid %s)\n' "$1" "$2" "$(elapsed "$3")" "$(recorded_pid "$1" || echo '?')"
}
running_line() { printf '  %-20s %-28s already running (pid %s)\n' "$1" "$2" "$(recorded_pid "$1")"; }

# Postgres runs as user postgres, which must be able to reach its files. A stack dir inside a
# private folder (a 0700 mktemp dir, a CI workspace) is out of its reach, so the cluster then
# lives in a world-searchable folder outside DIR, linked from DIR/data/postgres and recorded in
# DIR/run/postgres-home, which `down --purge` removes too.
postgres_home() {
  mkdir -p "$STACK_DIR/data" "$STACK_DIR/run"
  if runuser -u postgres -- test -x "$STACK_DIR/data"; then
    printf '%s\n' "$STACK_DIR/data"
    return
  fi
  local ext
  ext="/tmp/vibedata-pg-$(printf '%s' "$STACK_DIR" | sha256sum | cut -c1-12)"
  mkdir -p "$ext" && chmod 755 "$ext"
  printf '%s\n' "$ext" >"$STACK_DIR/run/postgres-home"
  printf '%s\n' "$ext"
}

start_postgres() {
  local home port=$((BASE_PORT + 9)) pgdata tls sock t pwfile
  t=$(now_ms)
  if svc_running postgres; then running_line postgres "127.0.0.1:$port"; return; fi
  home=$(postgres_home)
  pgdata="$home/postgres" tls="$home/postgres-tls" sock="$home/postgres-run"
  if [[ "$home" != "$STACK_DIR/data" ]]; then
    [[ -L "$STACK_DIR/data/postgres" || ! -e "$STACK_DIR/data/postgres" ]] || die "$STACK_DIR/data/postgres exists but postgres cannot reach it; down --purge this stack"
    ln -sfn "$pgdata" "$STACK_DIR/data/postgres"
  fi
  # A Unix socket path must fit in 107 bytes; fall back to a short folder outside DIR if needed.
  (( ${#sock} < 80 )) || sock="/tmp/vibedata-pg-$(printf '%s' "$STACK_DIR" | sha256sum | cut -c1-12)-run"
  mkdir -p "$sock" "$tls" "$STACK_DIR/run"
  printf '%s\n' "$sock" >"$STACK_DIR/run/postgres-socket-dir"
  chown postgres:postgres "$sock" "$tls"
  runuser -u postgres -- test -x "$sock" || die "user postgres cannot reach $sock"
  port_free postgres "$port"
  if [[ ! -s "$pgdata/PG_VERSION" ]]; then
    rm -rf "$pgdata" && mkdir -p "$pgdata" && chown postgres:postgres "$pgdata" && chmod 700 "$pgdata"
    pwfile="$tls/initdb-pw"
    printf '%s\n' "$PG_SUPERUSER_PASSWORD" >"$pwfile" && chown postgres "$pwfile" && chmod 600 "$pwfile"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$pgdata" -U postgres --auth=scram-sha-256 \
      --pwfile="$pwfile" -E UTF8 --no-locale --no-sync >>"$(logs_dir)/postgres-initdb.log" 2>&1 \
      || { rm -f "$pwfile"; die "initdb failed; see $(logs_dir)/postgres-initdb.log"; }
    rm -f "$pwfile"
    cat >"$pgdata/pg_hba.conf" <<'EOF'
# TYPE  DATABASE  USER      ADDRESS        METHOD   (written by scripts/stack)
local   all       postgres                 scram-sha-256
hostssl all       all       127.0.0.1/32   scram-sha-256
EOF
    chown postgres:postgres "$pgdata/pg_hba.conf"
  fi
  install -o postgres -g postgres -m 600 "$STACK_DIR/ca/server.pem" "$tls/server.crt"
  install -o postgres -g postgres -m 600 "$STACK_DIR/ca/server.key" "$tls/server.key"
  START_CWD="$pgdata" start_bg postgres setpriv --reuid=postgres --regid=postgres --init-groups -- \
    "$PG_BIN/postgres" -D "$pgdata" -p "$port" -k "$sock" -c listen_addresses=127.0.0.1 \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
    -c ssl=on -c "ssl_cert_file=$tls/server.crt" -c "ssl_key_file=$tls/server.key" \
    -c password_encryption=scram-sha-256 -c logging_collector=off
  wait_ready postgres "$READY_TIMEOUT" "$PG_BIN/pg_isready" -q -h "$sock" -p "$port" -U postgres
  # The application role and database; the role's password is the Key Vault's postgres-password.
  # CREATEROLE and CREATEDB, as a flexible server's Entra administrator has them: Airbyte
  # Deployment creates Airbyte's own role and database.
  PGPASSWORD="$PG_SUPERUSER_PASSWORD" "$PG_BIN/psql" -h "$sock" -p "$port" -U postgres -d postgres \
    -X -q -v ON_ERROR_STOP=1 >>"$(logs_dir)/postgres-initdb.log" 2>&1 <<EOF || die "creating role/database vibedata failed; see $(logs_dir)/postgres-initdb.log"
\\set pw '$PG_VIBEDATA_PASSWORD'
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'vibedata') AS need_role \\gset
\\if :need_role
CREATE ROLE vibedata LOGIN CREATEROLE CREATEDB PASSWORD :'pw';
\\else
ALTER ROLE vibedata LOGIN CREATEROLE CREATEDB PASSWORD :'pw';
\\endif
SELECT NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'vibedata') AS need_db \\gset
\\if :need_db
CREATE DATABASE vibedata OWNER vibedata;
\\endif
EOF
  ready_line postgres "127.0.0.1:$port" "$t"
}

start_azurite() {
  local b=$((BASE_PORT + 4)) q=$((BASE_PORT + 5)) tb=$((BASE_PORT + 6)) t
  t=$(now_ms)
  if svc_running azurite; then running_line azurite "127.0.0.1:$b,$q,$tb"; return; fi
  port_free azurite-blob "$b"; port_free azurite-queue "$q"; port_free azurite-table "$tb"
  START_CWD="$STACK_DIR/data/azurite" start_bg azurite node "$AZURITE_JS" \
    --blobHost 127.0.0.1 --blobPort "$b" --queueHost 127.0.0.1 --queuePort "$q" \
    --tableHost 127.0.0.1 --tablePort "$tb" \
    --inMemoryPersistence --skipApiVersionCheck --loose --disableTelemetry \
    --oauth basic --cert "$STACK_DIR/ca/server.pem" --key "$STACK_DIR/ca/server.key"
  local p
  for p in "$b" "$q" "$tb"; do
    wait_ready azurite "$READY_TIMEOUT" http_answers "https://127.0.0.1:$p/devstoreaccount1?comp=list"
  done
  ready_line azurite "127.0.0.1:$b,$q,$tb" "$t"
}

# _registry_config NAME PORT SECRET AUTH_YAML: write DIR/registry/NAME.yml.
_registry_config() {
  mkdir -p "$STACK_DIR/registry" "$STACK_DIR/data/$1"
  cat >"$STACK_DIR/registry/$1.yml" <<EOF
# written by scripts/stack
version: 0.1
log:
  level: info
  fields: {service: $1}
storage:
  filesystem:
    rootdirectory: $STACK_DIR/data/$1
  delete:
    enabled: true
  maintenance:
    uploadpurging: {enabled: false}
http:
  addr: 127.0.0.1:$2
  secret: $3
  tls:
    certificate: $STACK_DIR/ca/server.pem
    key: $STACK_DIR/ca/server.key
auth:
$4
EOF
}

# _start_registry NAME PORT: start docker-registry on DIR/registry/NAME.yml and wait for /v2/.
_start_registry() {
  local name=$1 port=$2 t
  t=$(now_ms)
  START_CWD="$STACK_DIR/data/$name" start_bg "$name" docker-registry serve "$STACK_DIR/registry/$name.yml"
  wait_ready "$name" "$READY_TIMEOUT" http_is 401 "https://127.0.0.1:$port/v2/"
  ready_line "$name" "127.0.0.1:$port" "$t"
}

start_registry_publisher() {
  local port=$((BASE_PORT + 7))
  if svc_running registry-publisher; then running_line registry-publisher "127.0.0.1:$port"; return; fi
  port_free registry-publisher "$port"
  mkdir -p "$STACK_DIR/registry"
  htpasswd -Bbn publisher "$PUBLISHER_PASSWORD" >"$STACK_DIR/registry/publisher.htpasswd"
  _registry_config registry-publisher "$port" "$REGISTRY_PUBLISHER_HTTP_SECRET" "  htpasswd:
    realm: vibedata-publisher
    path: $STACK_DIR/registry/publisher.htpasswd"
  _start_registry registry-publisher "$port"
}

start_registry_customer() {
  local port=$((BASE_PORT + 8))
  if svc_running registry-customer; then running_line registry-customer "127.0.0.1:$port"; return; fi
  port_free registry-customer "$port"
  _registry_config registry-customer "$port" "$REGISTRY_CUSTOMER_HTTP_SECRET" "  token:
    realm: https://${VIBEDATA_STACK_REALM_HOST:-127.0.0.1}:$((BASE_PORT + 3))/oauth2/token
    service: $STACK_ACR_NAME
    issuer: $STACK_TOKEN_ISSUER
    rootcertbundle: $STACK_DIR/ca/token-bundle.pem"
  _start_registry registry-customer "$port"
}

write_emulator_json() {
  mkdir -p "$STACK_DIR/data/emulator"
  D="$STACK_DIR" P="$BASE_PORT" TENANT="$STACK_TENANT_ID" SUB="$STACK_SUBSCRIPTION_ID" \
  RG="$STACK_RESOURCE_GROUP" CLIENT="$STACK_IDENTITY_CLIENT_ID" PRINCIPAL="$STACK_IDENTITY_PRINCIPAL_ID" \
  HEADER="$IDENTITY_HEADER" ACR="$STACK_ACR_NAME" ISSUER="$STACK_TOKEN_ISSUER" \
  AUTOMATION="$STACK_AUTOMATION_ACCOUNT" SEARCHKEY="$SEARCH_ADMIN_KEY" HELM="$HELM_BIN" \
  PUBPW="$PUBLISHER_PASSWORD" PGPW="$PG_VIBEDATA_PASSWORD" IMDS="${VIBEDATA_STACK_IMDS:-}" \
  GRANTS="$REPO_ROOT/infra/roles/bootstrap-grants.json" \
  DEPLOYER_CLIENT="$STACK_DEPLOYER_CLIENT_ID" DEPLOYER_PRINCIPAL="$STACK_DEPLOYER_PRINCIPAL_ID" \
  python3 - >"$STACK_DIR/emulator.json" <<'EOF'
import json, os
e = os.environ
d, p = e["D"], int(e["P"])
print(json.dumps({
    "stateDir": f"{d}/data/emulator",
    # Each listener at p + its offset (emulator/src/listeners.rs; `--listeners` prints them).
    "listen": {"base": p},
    "tls": {"cert": f"{d}/ca/server.pem", "key": f"{d}/ca/server.key"},
    "tokenSigning": {"cert": f"{d}/ca/token-signing.pem", "key": f"{d}/ca/token-signing.key"},
    "tenantId": e["TENANT"], "subscriptionId": e["SUB"], "resourceGroup": e["RG"], "location": "eastus",
    "identity": {
        "clientId": e["CLIENT"], "principalId": e["PRINCIPAL"], "header": e["HEADER"],
        "resourceId": f"/subscriptions/{e['SUB']}/resourceGroups/{e['RG']}/providers/"
                      "Microsoft.ManagedIdentity/userAssignedIdentities/vibedata-uami",
        # IMDS over plain HTTP, only inside a network namespace of a test's own (tests/imds.rs).
        "imds": e["IMDS"] or None,
        "deployer": {"clientId": e["DEPLOYER_CLIENT"], "principalId": e["DEPLOYER_PRINCIPAL"]},
    },
    "customerRegistry": {"name": e["ACR"], "loginServer": f"127.0.0.1:{p + 8}",
                         "service": e["ACR"], "issuer": e["ISSUER"]},
    # storage: where the referrers front (listener publisherReferrers) reads the stored manifests.
    "publisherRegistry": {"loginServer": f"127.0.0.1:{p + 7}", "storage": f"{d}/data/registry-publisher"},
    "caFile": f"{d}/ca/ca.pem",
    # The managed resource group (emulator/src/arm/inventory.rs): names derive from baseName;
    # every private endpoint registers endpointIp; ports say where the stack serves each service.
    "inventory": {
        "baseName": "vibedata-local", "endpointIp": "127.0.0.1",
        "ports": {"keyVault": p + 1, "blob": p + 4, "queue": p + 5, "table": p + 6,
                  "registry": p + 8, "postgres": p + 9},
    },
    "automationAccount": e["AUTOMATION"],
    # The stack identity holds exactly the template's role assignments to the bootstrap
    # identity (emulator/src/grants.rs; kept current by infra/verify's grants_file test).
    "grants": e["GRANTS"],
    # AKS runCommand renders charts with the real helm (scripts/setup installs it); without it
    # `helm template`/`lint` in a command fail with a message saying so.
    "aks": {"helm": e["HELM"] if os.access(e["HELM"], os.X_OK) else None},
    # The account's runtime environments (system-generated in Azure); versions change over time.
    "automation": {"runtimeEnvironments": [
        {"name": "PowerShell-7.4", "language": "PowerShell", "version": "7.4", "defaultPackages": {"Az": "12.3.0"}},
        {"name": "Python-3.10", "language": "Python", "version": "3.10", "defaultPackages": {}},
    ]},
    # The AI Search data plane (P+12) takes this admin api-key or a bearer token.
    "search": {"adminKey": e["SEARCHKEY"]},
    "secrets": {
        "publisher-pull-credential": json.dumps({"username": "publisher", "password": e["PUBPW"]}),
        "postgres-password": e["PGPW"],
        "health-canary": "canary-ok",
    },
}, indent=2))
EOF
  chmod 600 "$STACK_DIR/emulator.json"
}

start_emulator() {
  local bin t p ports shown
  bin=$(emulator_bin)
  t=$(now_ms)
  write_emulator_json
  ports=$(emulator_ports)
  shown="127.0.0.1:$(port_ranges "$ports")"
  if svc_running emulator; then running_line emulator "$shown"; return; fi
  for p in $ports; do port_free emulator "$p"; done
  START_CWD="$STACK_DIR/data/emulator" start_bg emulator "$bin" --config "$STACK_DIR/emulator.json"
  # Every listener serves the control API, so each answers /_emulator/health once bound.
  for p in $ports; do
    wait_ready emulator "$READY_TIMEOUT" http_is 200 "https://127.0.0.1:$p/_emulator/health"
  done
  ready_line emulator "$shown" "$t"
}

write_env_file() {
  local d="$STACK_DIR" p="$BASE_PORT" inv=""
  # From the emulator's inventory (DIR/inventory.json): resource names and where the stack
  # serves each private FQDN (docs/local-stack.md, "Health checks against the stack").
  # Absent when there is no inventory (emulator skipped and not built).
  inv=$(inventory_get '"" if not inv else "\n".join([
      "export VIBEDATA_KEY_VAULT_NAME=" + inv["names"]["keyVault"],
      "export VIBEDATA_STORAGE_ACCOUNT=" + inv["names"]["storageAccount"],
      "export VIBEDATA_SEARCH_SERVICE=" + inv["names"]["search"],
      "export VIBEDATA_FOUNDRY_ACCOUNT=" + inv["names"]["foundry"],
      "export VIBEDATA_FOUNDRY_PROJECT=" + inv["names"]["foundryProject"],
      "export VIBEDATA_FOUNDRY_PROJECT_ENDPOINT=https://127.0.0.1:'"$((p + 13))"'/api/projects/" + inv["names"]["foundryProject"],
      "export VIBEDATA_FOUNDRY_SEARCH_CONNECTION=vibedata-search",
      "export VIBEDATA_AKS_CLUSTER=" + inv["names"]["aks"],
      # Airbyte logs and state go to the stack storage account, which is Azurite (P+4).
      "export VIBEDATA_AIRBYTE_STORAGE_ACCOUNT=" + inv["names"]["storageAccount"],
      "export VIBEDATA_AIRBYTE_STORAGE_BLOB_URL=https://127.0.0.1:'"$((p + 4))"'/devstoreaccount1",
      "export VIBEDATA_ENDPOINT_PORTS=" + inv["endpointPorts"]])')
  # The sample release's fixture signer (scripts/sample_release/sign.py), so that the stack verifies
  # the signed sample release in strict mode.
  local trust
  trust=$("$REPO_ROOT/scripts/sample-release" trust) || die "scripts/sample-release trust failed"
  cat >"$d/env.tmp" <<EOF
export VIBEDATA_STACK_DIR=$d
export VIBEDATA_STACK_BASE_PORT=$p
export VIBEDATA_CA_FILE=$d/ca/ca.pem
export AZ_SCRIPTS_AZURE_ENVIRONMENT=AzureCloud
export IDENTITY_ENDPOINT=https://127.0.0.1:$((p + 2))/msi/token
export IDENTITY_HEADER=$IDENTITY_HEADER
export VIBEDATA_TENANT_ID=$STACK_TENANT_ID
export VIBEDATA_SUBSCRIPTION_ID=$STACK_SUBSCRIPTION_ID
export VIBEDATA_RESOURCE_GROUP=$STACK_RESOURCE_GROUP
export VIBEDATA_LOCATION=eastus
export VIBEDATA_DEPLOYMENT_ID=local
export VIBEDATA_IDENTITY_CLIENT_ID=$STACK_IDENTITY_CLIENT_ID
export VIBEDATA_STACK_DEPLOYER_CLIENT_ID=$STACK_DEPLOYER_CLIENT_ID
export VIBEDATA_ARM_ENDPOINT=https://127.0.0.1:$p
export VIBEDATA_KEY_VAULT_URL=https://127.0.0.1:$((p + 1))
export VIBEDATA_KEY_VAULT_VERIFY_CHALLENGE_RESOURCE=false
export VIBEDATA_STORAGE_BLOB_URL=https://127.0.0.1:$((p + 4))/devstoreaccount1
# The same account behind the emulator's front that holds bearer requests to the grant table
# (Azurite itself checks no role): what the removal suite points the binary at.
export VIBEDATA_STACK_STORAGE_FRONT=https://127.0.0.1:$((p + 15))/devstoreaccount1
export VIBEDATA_ACR_NAME=$STACK_ACR_NAME
export VIBEDATA_AUTOMATION_ACCOUNT=$STACK_AUTOMATION_ACCOUNT
export VIBEDATA_ACR_LOGIN_SERVER=127.0.0.1:$((p + 8))
export VIBEDATA_ACR_AUTH_ENDPOINT=https://${VIBEDATA_STACK_REALM_HOST:-127.0.0.1}:$((p + 3))
export VIBEDATA_PUBLISHER_REGISTRY=127.0.0.1:$((p + 7))
# The publisher registry behind the emulator's front that answers the OCI referrers API.
export VIBEDATA_STACK_PUBLISHER_REFERRERS=127.0.0.1:$((p + 14))
export VIBEDATA_PUBLISHER_CREDENTIAL_SECRET=publisher-pull-credential
export VIBEDATA_IMAGES=vibedata/api,vibedata/auth,vibedata/catalog,vibedata/exporter,vibedata/gateway,vibedata/health-probe,vibedata/ingest,vibedata/notifier,vibedata/query-engine,vibedata/scheduler,vibedata/web,vibedata/worker
export VIBEDATA_STACK_PUBLISHER_USER=publisher
export VIBEDATA_STACK_PUBLISHER_PASSWORD=$PUBLISHER_PASSWORD
export VIBEDATA_POSTGRES_HOST=127.0.0.1
export VIBEDATA_POSTGRES_PORT=$((p + 9))
export VIBEDATA_POSTGRES_DATABASE=vibedata
export VIBEDATA_POSTGRES_USER=vibedata
export VIBEDATA_POSTGRES_PASSWORD_SECRET=postgres-password
export VIBEDATA_STACK_POSTGRES_SUPERUSER_PASSWORD=$PG_SUPERUSER_PASSWORD
export VIBEDATA_EMULATOR_CONTROL=https://127.0.0.1:$p/_emulator
export VIBEDATA_HEALTH_CANARY_SECRET=health-canary
export VIBEDATA_DNS_SERVER=127.0.0.1:$((p + 10))
export VIBEDATA_STACK_APPS_ENDPOINT=https://127.0.0.1:$((p + 11))
export VIBEDATA_SEARCH_ENDPOINT=https://127.0.0.1:$((p + 12))
export VIBEDATA_SEARCH_ADMIN_KEY=$SEARCH_ADMIN_KEY
${trust}
${inv}
EOF
  chmod 600 "$d/env.tmp" && mv "$d/env.tmp" "$d/env"
}
