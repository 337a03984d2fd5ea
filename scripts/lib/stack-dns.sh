# shellcheck shell=bash
# The resource group's inventory as the stack consumes it, and the DNS stand-in (dnsmasq) that
# answers the inventory's private FQDNs. Needs common.sh, proc.sh, and STACK_DIR, BASE_PORT,
# READY_TIMEOUT; start_dns also the functions of stack-components.sh.
#
#   DIR/inventory.json  `vibedata-emulator --config DIR/emulator.json --inventory`: names, private
#                       endpoints, every DNS name with its IP and port (docs/local-stack.md)
#   DIR/dns/hosts       dnsmasq's --addn-hosts file, one "IP NAME" per line; dns_set edits it
#   DIR/dns/hosts.lock  flock for edits (tests may flip records concurrently)

DNSQ="$REPO_ROOT/scripts/lib/dnsq.py"

inventory_file() { printf '%s/inventory.json' "$STACK_DIR"; }

# write_inventory: DIR/inventory.json from the emulator binary (`--inventory` binds nothing).
# Without a binary (emulator skipped and not built) the inventory is empty: no DNS records, no
# extra certificate names, no port overrides.
write_inventory() {
  local bin out
  bin=$(emulator_bin)
  out=$(inventory_file)
  if [[ -x "$bin" ]] && "$bin" --config "$STACK_DIR/emulator.json" --inventory >"$out.tmp" 2>"$STACK_DIR/logs/inventory.log"; then
    mv "$out.tmp" "$out"
  else
    rm -f "$out.tmp"
    warn "no inventory ($bin --inventory failed or is missing; see $STACK_DIR/logs/inventory.log): the DNS stand-in will answer nothing"
    printf '{}\n' >"$out"
  fi
}

# inventory_get EXPR: a value from DIR/inventory.json; EXPR is Python over `inv` (empty if absent).
inventory_get() {
  python3 - "$(inventory_file)" "$1" <<'EOF'
import json, sys
inv = json.load(open(sys.argv[1]))
try:
    v = eval(sys.argv[2], {"inv": inv})
except (KeyError, IndexError, TypeError):
    v = ""
print("\n".join(v) if isinstance(v, list) else v)
EOF
}

# inventory_dns_names: every name the DNS stand-in answers, one per line.
inventory_dns_names() { inventory_get '[d["name"] for d in inv.get("dns", [])]'; }
# inventory_first_dns: "NAME IP" of the first DNS record (empty if none).
inventory_first_dns() { inventory_get '" ".join([(d["name"], d["ip"]) for d in inv.get("dns", [])][0]) if inv.get("dns") else ""'; }

# write_dns_hosts: DIR/dns/hosts from the inventory (replacing any dns_set edits).
write_dns_hosts() {
  mkdir -p "$STACK_DIR/dns"
  chmod 755 "$STACK_DIR/dns"
  (
    flock 9
    {
      printf '# written by scripts/stack from %s; edit with scripts/stack dns-set\n' "$(inventory_file)"
      inventory_get '[d["ip"] + " " + d["name"] for d in inv.get("dns", [])]'
    } >"$STACK_DIR/dns/hosts.tmp"
    chmod 644 "$STACK_DIR/dns/hosts.tmp"
    mv "$STACK_DIR/dns/hosts.tmp" "$STACK_DIR/dns/hosts"
  ) 9>"$STACK_DIR/dns/hosts.lock"
}

dns_port() { printf '%s' $((BASE_PORT + 10)); }

# dns_answers NAME [WANT]: the stand-in answers NAME (with exactly WANT, if given).
dns_answers() {
  if [[ -n "${2:-}" ]]; then
    python3 "$DNSQ" --server "127.0.0.1:$(dns_port)" --want "$2" "$1" >/dev/null 2>&1
  else
    python3 "$DNSQ" --server "127.0.0.1:$(dns_port)" "$1" >/dev/null 2>&1
  fi
}

start_dns() {
  local port t probe user=()
  port=$(dns_port)
  t=$(now_ms)
  if svc_running dns; then running_line dns "127.0.0.1:$port"; return; fi
  port_free dns "$port"
  write_dns_hosts
  # As root dnsmasq would drop to 'nobody', who may not be able to read DIR (e.g. under /root).
  (( EUID == 0 )) && user=(--user=root)
  start_bg dns dnsmasq --keep-in-foreground --conf-file=/dev/null "${user[@]}" \
    --port="$port" --listen-address=127.0.0.1 --bind-interfaces \
    --no-resolv --no-hosts --addn-hosts="$STACK_DIR/dns/hosts" --address=/#/ \
    --local-ttl=0 --pid-file= --log-facility=- --log-queries
  probe=$(inventory_first_dns)
  [[ -n "$probe" ]] || probe="ready.invalid NXDOMAIN"
  wait_ready dns "$READY_TIMEOUT" dns_answers "${probe%% *}" "${probe#* }"
  ready_line dns "127.0.0.1:$port" "$t"
}

# dns_reload WAIT_NAME WANT: SIGHUP dnsmasq (it rereads --addn-hosts) and wait until WAIT_NAME
# answers WANT.
dns_reload() {
  local pid
  pid=$(recorded_pid dns) || die "the DNS stand-in does not run in $STACK_DIR (scripts/stack up first)"
  kill -HUP "$pid"
  poll_until 5 dns_answers "$1" "$2" || die "the DNS stand-in did not answer $1 with $2 within 5 s after reloading"
}

# dns_set NAME IP|-: answer NAME with IP from now on ('-': NXDOMAIN), until dns_reset.
dns_set() {
  local name=${1,,} ip=$2
  [[ "$name" =~ ^[a-z0-9.-]+$ ]] || die "not a DNS name: '$1'"
  [[ "$ip" == - || "$ip" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || die "not an IPv4 address (or -): '$ip'"
  [[ -f "$STACK_DIR/dns/hosts" ]] || die "no $STACK_DIR/dns/hosts; run scripts/stack up first"
  (
    flock 9
    awk -v n="$name" 'tolower($2) != n' "$STACK_DIR/dns/hosts" >"$STACK_DIR/dns/hosts.tmp"
    [[ "$ip" == - ]] || printf '%s %s\n' "$ip" "$name" >>"$STACK_DIR/dns/hosts.tmp"
    chmod 644 "$STACK_DIR/dns/hosts.tmp"
    mv "$STACK_DIR/dns/hosts.tmp" "$STACK_DIR/dns/hosts"
  ) 9>"$STACK_DIR/dns/hosts.lock"
  [[ "$ip" == - ]] && ip=NXDOMAIN
  dns_reload "$name" "$ip"
  log "dns: $name -> $ip"
}

# dns_reset: every record back to the inventory's.
dns_reset() {
  local first
  write_dns_hosts
  first=$(inventory_first_dns)
  if [[ -n "$first" ]]; then
    dns_reload "${first%% *}" "${first#* }"
  else
    dns_reload ready.invalid NXDOMAIN
  fi
  log "dns: records reset to the inventory's"
}
