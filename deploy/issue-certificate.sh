#!/usr/bin/env bash
# Issues an RDG client certificate (clinic, reader or administrator) from the hospital's or
# province's CA, after checking it against the gateway's configuration with the gateway's own
# rules (`rdg-gateway --check-config`): the institution must be configured, and the role must
# fit its level (clinics: village, township, community, van; readers: county, city, province;
# administrators: any). Subject O=<institution>, OU=<role>, CN=<user> (UTF-8: 李医生 is fine),
# extensions from pki/leaf-profiles.cnf, a random 128-bit serial.
#
#   issue-certificate.sh [--sm2] [--days N] CA_CERT CA_KEY GATEWAY_CONFIG INSTITUTION ROLE USER OUT
#
# Writes OUT.key (mode 0600) and OUT.pem; never overwrites. Keys are ECDSA P-256; --sm2 (readers
# only) makes the report-signing pair SM2/SM3 and adds OUT-tls.key/.pem, an ECDSA pair for the
# TLS handshake (gRPC's TLS does not speak SM2). --days defaults to 397. The gateway binary is
# $RDG_GATEWAY_BIN, else rdg-gateway on PATH, else the build tree's beside this script.
set -euo pipefail

readonly SM2_ID=1234567812345678  # GB/T 32918 default ID, as dev-pki.sh and the clients use
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  echo "usage: $0 [--sm2] [--days N] CA_CERT CA_KEY GATEWAY_CONFIG INSTITUTION ROLE USER OUT" >&2
  echo "  ROLE: clinic, reader or admin; OUT: path prefix of OUT.key and OUT.pem" >&2
  exit 2
}
die() { echo "issue-certificate: $*" >&2; exit 1; }

sm2=0 days=397
while [ $# -gt 0 ]; do
  case "$1" in
    --sm2) sm2=1; shift ;;
    --days) [ $# -ge 2 ] || usage; days=$2; shift 2 ;;
    -h|--help) usage ;;
    --*) echo "unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -eq 7 ] || usage
ca_cert=$1 ca_key=$2 config=$3 institution=$4 role=$5 user=$6 out=$7

[[ "$days" =~ ^[0-9]+$ ]] && [ "$days" -ge 1 ] && [ "$days" -le 825 ] ||
  die "--days must be a whole number from 1 to 825"
case "$role" in clinic|reader|admin) ;; *) die "ROLE must be clinic, reader or admin";; esac
[ "$sm2" -eq 0 ] || [ "$role" = reader ] ||
  die "--sm2 is for readers (an SM2 key signs reports; TLS needs ECDSA)"
# The subject is written /O=../OU=../CN=..: no separators, escapes or control characters.
if [ -z "$user" ] || [[ "$user" == *[/\\+=,]* ]] || [[ "$user" =~ [[:cntrl:]] ]]; then
  die "USER must be non-empty and hold none of / \\ + = , or control characters"
fi
[ -r "$ca_cert" ] || die "cannot read CA_CERT $ca_cert"
[ -r "$ca_key" ] || die "cannot read CA_KEY $ca_key"
for f in "$out.key" "$out.pem" "$out-tls.key" "$out-tls.pem"; do
  [ ! -e "$f" ] || die "$f exists; not overwriting (choose another OUT)"
done

gateway=${RDG_GATEWAY_BIN:-}
if [ -z "$gateway" ]; then
  gateway=$(command -v rdg-gateway || true)
  [ -n "$gateway" ] || gateway="$here/../build/bin/rdg-gateway"
fi
[ -x "$gateway" ] || die "rdg-gateway not found (set RDG_GATEWAY_BIN)"
listing=$("$gateway" --config "$config" --check-config) ||
  die "the gateway refused $config (see above)"
row=$(awk -F'\t' -v id="$institution" '$1 == id' <<<"$listing")
if [ -z "$row" ]; then
  die "institution \"$institution\" is not in $config; configured: $(cut -f1 <<<"$listing" | tr '\n' ' ')"
fi
IFS=$'\t' read -r _ level roles name <<<"$row"
[[ " $roles " == *" $role "* ]] ||
  die "a $role certificate cannot be issued for $institution ($name, $level): roles there: $roles"

umask 077
out_dir=$(dirname "$out")
mkdir -p "$out_dir"
tmp=$(mktemp -d "$out_dir/.issue-certificate.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
profiles="$here/pki/leaf-profiles.cnf"
[ -r "$profiles" ] || die "missing $profiles"
cnf="$tmp/openssl.cnf"
{ printf '[ req ]\ndistinguished_name = req_dn\nstring_mask = utf8only\n[ req_dn ]\n'
  cat "$profiles"; } >"$cnf"

# quiet CMD...: runs CMD, showing its output only if it fails (openssl chatters on stderr).
quiet() {
  local log
  if ! log=$("$@" 2>&1); then
    printf 'issue-certificate: failed: %s\n%s\n' "$*" "$log" >&2
    return 1
  fi
}

# one NAME ALG EXTENSIONS: a key and a certificate in $tmp, checked against the CA.
one() {
  local file=$1 alg=$2 ext=$3
  local -a sign=(-sha256) vfy=()
  if [ "$alg" = sm2 ]; then
    quiet openssl genpkey -algorithm SM2 -out "$tmp/$file.key"
    sign=(-sm3 -sigopt "distid:$SM2_ID")
    vfy=(-vfyopt "distid:$SM2_ID")
  else
    quiet openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
      -pkeyopt ec_param_enc:named_curve -out "$tmp/$file.key"
  fi
  quiet openssl req -new -config "$cnf" -utf8 -key "$tmp/$file.key" \
    -subj "/O=$institution/OU=$role/CN=$user" "${sign[@]}" -out "$tmp/$file.csr"
  quiet openssl x509 -req -in "$tmp/$file.csr" "${vfy[@]}" -CA "$ca_cert" -CAkey "$ca_key" \
    -set_serial "0x$(openssl rand -hex 16)" -days "$days" -sha256 -extfile "$cnf" \
    -extensions "$ext" -out "$tmp/$file.pem"
  quiet openssl verify -CAfile "$ca_cert" "$tmp/$file.pem"
}

base=$(basename "$out")
if [ "$sm2" -eq 1 ]; then
  one "$base" sm2 reader_ext
  one "$base-tls" ec reader_tls_ext
else
  one "$base" ec "${role}_ext"
fi
for f in "$tmp/$base"*.key "$tmp/$base"*.pem; do
  chmod "$([[ "$f" == *.key ]] && echo 0600 || echo 0644)" "$f"
  mv -n "$f" "$out_dir/$(basename "$f")"
done
issued=("$out.pem")
[ "$sm2" -eq 0 ] || issued+=("$out-tls.pem")
for f in "${issued[@]}"; do
  echo "issued $f: $(openssl x509 -in "$f" -noout -subject -nameopt utf8,sep_comma_plus \
    -enddate | tr '\n' ' ')"
done
