#!/usr/bin/env bash
# Creates a throw-away development PKI for the demo province (deploy/config/demo.textproto):
# the platform CA, the gateway's server certificate and one client certificate per demo user.
# NEVER use these keys for real patient data.
#
# Usage: deploy/dev-pki.sh OUT_DIR [CA_DIR]   (the README quick start uses var/pki)
#
# OUT_DIR gets the certificates, keys and ca.pem the gateway and the clients use; the CA's private
# key goes to CA_DIR (default: OUT_DIR-ca, e.g. var/pki-ca), never into OUT_DIR or the gateway's
# data dir: whoever holds it can mint any identity. A ca.key found in OUT_DIR (made by an older
# version of this script) is moved there. Directories are 0700, keys and the token 0600.
#
# Idempotent: an existing CA (ca.pem + ca.key) is reused, an existing NAME.pem/NAME.key is never
# overwritten, and only missing files are created, so re-running the quick start keeps the same PKI.
# A key without its certificate gets a new certificate for that key; a certificate without its key is
# an error (delete the certificate to reissue). Existing certificates are checked against ca.pem and
# their key; the script exits non-zero if one does not match.
#
# Client certificate profile (the gateway derives the principal from it, see README):
#   subject  O=<institution id>, OU=<role: clinic | reader | admin>, CN=<user>
#   EKU      clientAuth (readers also emailProtection: they sign reports with CMS)
#   keyUsage critical digitalSignature (readers also nonRepudiation); basicConstraints CA:FALSE
# Keys are ECDSA P-256, except reader-a-ecg whose signing key is SM2 (signs reports with SM2/SM3 and
# the GB/T distinguishing ID 1234567812345678). The CA stays ECDSA P-256 and signs with SHA-256.
#
# SM2 and TLS: OpenSSL 3.0's libssl cannot use an SM2 certificate as a TLS identity (loading it into
# an SSL context fails with "unknown certificate type", for TLS 1.2 and 1.3 alike; checked with
# s_server/s_client). So reader-a-ecg has two pairs with the same subject, hence the same principal:
#   reader-a-ecg.pem/.key      SM2 — the report *signing* key and certificate
#   reader-a-ecg-tls.pem/.key  ECDSA P-256 — the *transport* identity presented in the mTLS handshake
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ] || [ -z "$1" ]; then
  echo "usage: $0 OUT_DIR [CA_DIR]" >&2
  exit 2
fi
out=${1%/}
ca_dir=${2:-$out-ca}
ca_dir=${ca_dir%/}
command -v openssl >/dev/null || { echo "dev-pki: openssl not found" >&2; exit 1; }

readonly SM2_ID=1234567812345678
readonly CA_DAYS=3650
readonly LEAF_DAYS=825

# name | O (institution) | OU (role) | CN (user) | key algorithm (ec or sm2)
readonly users=(
  "clinic-a1|clinic-a1|clinic|clinic-a1|ec"
  "clinic-a2|clinic-a2|clinic|clinic-a2|ec"
  "van-a1|van-a1|clinic|van-a1|ec"
  "clinic-b1|clinic-b1|clinic|clinic-b1|ec"
  "reader-a-rad|county-a|reader|reader-a-rad|ec"
  "reader-a-rad2|county-a|reader|reader-a-rad2|ec"
  "reader-a-ecg|county-a|reader|reader-a-ecg|sm2"
  "reader-a-ecg-tls|county-a|reader|reader-a-ecg|ec"
  "reader-a-lab|county-a|reader|reader-a-lab|ec"
  "reader-b-rad|county-b|reader|reader-b-rad|ec"
  "reader-city-rad|city|reader|reader-city-rad|ec"
  "admin|province|admin|admin|ec"
)

# Before anything is created: no file or directory of the PKI is readable by other users.
umask 077
mkdir -p "$out" "$ca_dir"
chmod 0700 "$out" "$ca_dir"
if [ -e "$out/ca.key" ] && [ ! -e "$ca_dir/ca.key" ]; then
  mv -n "$out/ca.key" "$ca_dir/ca.key"
  echo "dev-pki: moved ca.key out of $out into $ca_dir" >&2
fi
# Staging directory inside OUT_DIR so that installing a file is an atomic rename; removed on exit.
tmp=$(mktemp -d "$out/.dev-pki.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

cnf="$tmp/openssl.cnf"
cat >"$cnf" <<'EOF'
# Self-contained: the system openssl.cnf is not read.
[ req ]
distinguished_name = req_dn
[ req_dn ]

[ ca_ext ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash

[ gateway_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth, clientAuth
subjectAltName         = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

# The edge agent's DICOM TLS port (dicom.tls): a server certificate devices verify.
[ agent_dicom_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
EOF
# The client certificates' profiles, shared with issue-certificate.sh (a hospital CA).
cat "$(dirname "${BASH_SOURCE[0]}")/pki/leaf-profiles.cnf" >>"$cnf"

summary=()
failed=0
note() { summary+=("$(printf '  %-16s %s' "$1" "$2")"); }
fail() { note "ERROR" "$1"; failed=1; }

# quiet CMD...: runs CMD, showing its output only if it fails (openssl chatters on stderr).
quiet() {
  local log
  if ! log=$("$@" 2>&1); then
    printf 'dev-pki: failed: %s\n%s\n' "$*" "$log" >&2
    return 1
  fi
}

# Random positive 128-bit serial number.
serial() { printf '0x%s' "$(openssl rand -hex 16)"; }

# gen_key ALG FILE: a new private key (ec = ECDSA P-256, sm2 = SM2), mode 0600.
gen_key() {
  case "$1" in
    ec)  quiet openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
           -pkeyopt ec_param_enc:named_curve -out "$2" ;;
    sm2) quiet openssl genpkey -algorithm SM2 -out "$2" ;;
    *)   echo "dev-pki: unknown key algorithm $1" >&2; return 1 ;;
  esac
  chmod 0600 "$2"
}

# install_file SRC DEST MODE: atomic rename into place, never over an existing file.
install_file() {
  chmod "$3" "$1"
  if [ -e "$2" ]; then
    echo "dev-pki: $2 appeared while running; not overwriting" >&2
    return 1
  fi
  mv -n "$1" "$2"
}

# check_pair NAME: an existing certificate must chain to ca.pem and match its key.
check_pair() {
  local cert="$out/$1.pem" key="$out/$1.key"
  if ! openssl verify -CAfile "$out/ca.pem" "$cert" >/dev/null 2>&1; then
    fail "$1.pem is not issued by this ca.pem (delete $1.pem and $1.key to reissue)"
  elif ! cmp -s <(openssl pkey -in "$key" -pubout 2>/dev/null) \
                <(openssl x509 -in "$cert" -pubkey -noout 2>/dev/null); then
    fail "$1.pem does not match $1.key (delete both to reissue)"
  fi
}

# --- platform CA -------------------------------------------------------------------------------
if [ -e "$out/ca.pem" ] && [ -e "$ca_dir/ca.key" ]; then
  note "already present" "ca.key"
  note "already present" "ca.pem"
elif [ -e "$out/ca.pem" ] || [ -e "$ca_dir/ca.key" ]; then
  echo "dev-pki: only one of $out/ca.pem and $ca_dir/ca.key exists; delete it (and every" \
       "certificate it issued) to start a new PKI" >&2
  exit 1
else
  gen_key ec "$tmp/ca.key"
  quiet openssl req -new -x509 -config "$cnf" -extensions ca_ext -key "$tmp/ca.key" \
    -subj "/O=RDG Dev Province/CN=RDG Dev Platform CA" -days "$CA_DAYS" -sha256 \
    -set_serial "$(serial)" -out "$tmp/ca.pem"
  # Its own staging dir: a rename across file systems would not be atomic.
  ca_tmp=$(mktemp -d "$ca_dir/.dev-pki.XXXXXX")
  mv "$tmp/ca.key" "$ca_tmp/ca.key"
  install_file "$ca_tmp/ca.key" "$ca_dir/ca.key" 0600
  rmdir "$ca_tmp"
  install_file "$tmp/ca.pem" "$out/ca.pem" 0644
  note "created" "ca.key"
  note "created" "ca.pem"
fi

# issue NAME SUBJECT EXTENSIONS ALG: creates NAME.key (if missing) and NAME.pem (if missing).
issue() {
  local name=$1 subject=$2 ext=$3 alg=$4
  local cert="$out/$name.pem" key="$out/$name.key"
  local -a sign_opts=(-sha256) verify_opts=()
  if [ "$alg" = sm2 ]; then
    # The CSR is self-signed with SM2/SM3 and the GB/T ID; the CA must use the same ID to check it.
    sign_opts=(-sm3 -sigopt "distid:$SM2_ID")
    verify_opts=(-vfyopt "distid:$SM2_ID")
  fi

  if [ -e "$cert" ] && [ ! -e "$key" ]; then
    fail "$name.pem exists without $name.key (delete $name.pem to reissue)"
    return 0
  fi
  if [ -e "$key" ]; then
    note "already present" "$name.key"
  else
    gen_key "$alg" "$tmp/$name.key"
    install_file "$tmp/$name.key" "$key" 0600
    note "created" "$name.key"
  fi
  if [ -e "$cert" ]; then
    note "already present" "$name.pem"
    check_pair "$name"
    return 0
  fi
  quiet openssl req -new -config "$cnf" -key "$key" -subj "$subject" "${sign_opts[@]}" \
    -out "$tmp/$name.csr"
  quiet openssl x509 -req -in "$tmp/$name.csr" "${verify_opts[@]}" \
    -CA "$out/ca.pem" -CAkey "$ca_dir/ca.key" -set_serial "$(serial)" \
    -days "$LEAF_DAYS" -sha256 -extfile "$cnf" -extensions "$ext" \
    -out "$tmp/$name.pem"
  install_file "$tmp/$name.pem" "$cert" 0644
  note "created" "$name.pem"
}

# --- gateway (server) ----------------------------------------------------------------------------
issue gateway "/O=rdg/OU=gateway/CN=localhost" gateway_ext ec
# --- clinic-a1's edge agent, DICOM TLS port (server) ---------------------------------------------
issue agent-dicom-a1 "/O=clinic-a1/OU=agent-dicom/CN=localhost" agent_dicom_ext ec

# --- users -----------------------------------------------------------------------------------
for row in "${users[@]}"; do
  IFS='|' read -r name org role user alg <<<"$row"
  ext="${role}_ext"
  [ "$name" = reader-a-ecg-tls ] && ext=reader_tls_ext
  issue "$name" "/O=$org/OU=$role/CN=$user" "$ext" "$alg"
done

# --- monitoring token (the HTTP monitoring port's bearer token; throw-away like the keys) ---------
if [ -e "$out/monitoring.token" ]; then
  note "already present" "monitoring.token"
else
  openssl rand -hex 32 >"$tmp/monitoring.token"
  install_file "$tmp/monitoring.token" "$out/monitoring.token" 0600
  note "created" "monitoring.token"
fi

echo "dev-pki: $out (the CA's key: $ca_dir)"
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
  echo "dev-pki: some existing files are inconsistent (see ERROR lines)" >&2
  exit 1
fi
