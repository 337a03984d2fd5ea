# shellcheck shell=bash
# The stack's local CA, certificates and per-DIR secrets (generated once per DIR, then reused).
# Needs common.sh and STACK_DIR. Uses the openssl CLI only; nothing in the Rust tree links OpenSSL.

# _sign NAME SUBJECT EXTENSIONS: a 2048-bit RSA key and a certificate for it, signed by the CA.
_sign() {
  local name=$1 subj=$2 ext=$3 ca="$STACK_DIR/ca"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$ca/$name.key" 2>/dev/null
  openssl req -new -key "$ca/$name.key" -subj "$subj" -out "$ca/$name.csr"
  printf '%s\n' "$ext" >"$ca/$name.ext"
  openssl x509 -req -in "$ca/$name.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" -CAcreateserial \
    -days 825 -sha256 -extfile "$ca/$name.ext" -out "$ca/$name.pem" 2>/dev/null
  rm -f "$ca/$name.csr" "$ca/$name.ext"
  chmod 600 "$ca/$name.key"
}

# server_sans: the subjectAltName value of the server certificate.
server_sans() {
  local name sans="IP:127.0.0.1,DNS:localhost"
  if [[ -s "$STACK_DIR/inventory.json" ]]; then
    while IFS= read -r name; do
      [[ -n "$name" ]] && sans+=",DNS:$name"
    done < <(inventory_dns_names)
  fi
  printf '%s' "$sans"
}

ensure_certs() {
  local ca="$STACK_DIR/ca"
  mkdir -p "$ca/certs.d"
  if [[ ! -s "$ca/ca.pem" || ! -s "$ca/ca.key" ]]; then
    rm -f "$ca"/*.pem "$ca"/*.key      # a new CA invalidates every certificate it signed
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$ca/ca.key" 2>/dev/null
    chmod 600 "$ca/ca.key"
    openssl req -x509 -new -key "$ca/ca.key" -sha256 -days 3650 \
      -subj "/O=vibedata local stack/CN=vibedata local CA $(basename "$STACK_DIR")" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -addext "subjectKeyIdentifier=hash" \
      -out "$ca/ca.pem"
  fi
  # The server certificate names 127.0.0.1, localhost and every DNS name of the inventory
  # (DIR/inventory.json, written before this runs), so TLS with SNI = a private FQDN verifies.
  # When the names change (a new emulator build), only the server certificate is signed anew:
  # the CA stays, and running services keep the old certificate until they restart.
  local sans
  sans=$(server_sans)
  if [[ ! -s "$ca/server.pem" || ! -s "$ca/server.key" || "$(cat "$ca/server.sans" 2>/dev/null)" != "$sans" ]]; then
    [[ -s "$ca/server.pem" ]] && log "the inventory's names changed: signing a new server certificate (restart running services to use it)"
    _sign server "/O=vibedata local stack/CN=localhost" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$sans
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid"
    printf '%s\n' "$sans" >"$ca/server.sans"
  fi
  if [[ ! -s "$ca/token-signing.pem" || ! -s "$ca/token-signing.key" ]]; then
    _sign token-signing "/O=vibedata local stack/CN=vibedata-emulator token signing" \
      "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid"
  fi
  cp "$ca/ca.pem" "$ca/certs.d/ca.crt"
  # The customer registry's rootcertbundle: the CA (for x5c chains) and the signing certificate
  # itself (for libtrust-style kid headers), so either header form the emulator uses verifies.
  cat "$ca/ca.pem" "$ca/token-signing.pem" >"$ca/token-bundle.pem"
}

# ensure_secrets: per-DIR random values in DIR/secrets.env (mode 0600), loaded into the shell.
ensure_secrets() {
  local f="$STACK_DIR/secrets.env" k
  touch "$f" && chmod 600 "$f"
  for k in IDENTITY_HEADER PUBLISHER_PASSWORD PG_SUPERUSER_PASSWORD PG_VIBEDATA_PASSWORD \
           REGISTRY_PUBLISHER_HTTP_SECRET REGISTRY_CUSTOMER_HTTP_SECRET SEARCH_ADMIN_KEY; do
    grep -q "^$k=" "$f" || printf '%s=%s\n' "$k" "$(openssl rand -hex 20)" >>"$f"
  done
  # shellcheck disable=SC1090
  source "$f"
}
