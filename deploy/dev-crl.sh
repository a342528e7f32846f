#!/usr/bin/env bash
# Revokes certificates of the development PKI (deploy/dev-pki.sh) and writes the CA's new CRL,
# the way a hospital CA does it with `openssl ca`: the CA keeps a database of what it revoked
# (index.txt beside its key) and signs a CRL of all of it. The gateway reads the CRL from
# tls.crl_file and notices the new file within a second or two (or on SIGHUP).
#
# Usage: deploy/dev-crl.sh PKI_DIR [NAME...]
#   PKI_DIR   the OUT_DIR given to dev-pki.sh (its CA key is in PKI_DIR-ca, or give CA_DIR=…)
#   NAME      certificates to revoke (PKI_DIR/NAME.pem); none: only (re)issue the CRL
# Writes PKI_DIR/crl.pem atomically (a new file renamed into place). Revoking twice is harmless.
set -euo pipefail

if [ $# -lt 1 ] || [ -z "$1" ]; then
  echo "usage: $0 PKI_DIR [NAME...]" >&2
  exit 2
fi
pki=${1%/}
shift
ca_dir=${CA_DIR:-$pki-ca}
umask 077
[ -e "$ca_dir/ca.key" ] || { echo "dev-crl: no CA key in $ca_dir (see dev-pki.sh)" >&2; exit 1; }

touch "$ca_dir/index.txt"
[ -e "$ca_dir/crlnumber" ] || echo 1000 >"$ca_dir/crlnumber"
cat >"$ca_dir/ca.cnf" <<EOF
[ ca ]
default_ca = dev_ca
[ dev_ca ]
database         = $ca_dir/index.txt
crlnumber        = $ca_dir/crlnumber
certificate      = $pki/ca.pem
private_key      = $ca_dir/ca.key
default_md       = sha256
default_crl_days = 30
EOF

for name in "$@"; do
  cert="$pki/$name.pem"
  [ -e "$cert" ] || { echo "dev-crl: no certificate $cert" >&2; exit 1; }
  serial=$(openssl x509 -in "$cert" -noout -serial | cut -d= -f2)
  if grep -q "^R.*[[:space:]]$serial[[:space:]]" "$ca_dir/index.txt"; then
    echo "dev-crl: $name (serial $serial) was already revoked"
    continue
  fi
  openssl ca -config "$ca_dir/ca.cnf" -revoke "$cert" -crl_reason keyCompromise 2>/dev/null
  echo "dev-crl: revoked $name (serial $serial)"
done

openssl ca -config "$ca_dir/ca.cnf" -gencrl -out "$pki/.crl.pem.tmp" 2>/dev/null
mv -f "$pki/.crl.pem.tmp" "$pki/crl.pem"
echo "dev-crl: $pki/crl.pem ($(grep -c '^R' "$ca_dir/index.txt" || true) revoked)"
