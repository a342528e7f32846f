#!/usr/bin/env bash
# Issues an administrator's own token for the gateway's monitoring port (/metrics, /dashboard):
# writes TOKEN_DIR/NAME.token (mode 0600) holding a random token and its expiry, and prints the
# token once. The gateway (monitoring.token_dir: TOKEN_DIR) accepts it within a second and names
# NAME in the audit log for every view; deleting the file revokes it the same way.
#
#   deploy/issue-monitoring-token.sh NAME DAYS TOKEN_DIR
#   e.g. deploy/issue-monitoring-token.sh zhang.wei 90 /etc/rdg/monitoring-tokens
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 NAME DAYS TOKEN_DIR   (NAME: letters, digits, . _ -; DAYS: 1-366)" >&2
  exit 2
fi
name=$1 days=$2 dir=$3
if ! [[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]]; then
  echo "$0: NAME must be 1-64 letters, digits, '.', '_' or '-' (it names the file)" >&2
  exit 2
fi
if ! [[ "$days" =~ ^[0-9]+$ ]] || [ "$days" -lt 1 ] || [ "$days" -gt 366 ]; then
  echo "$0: DAYS must be a whole number from 1 to 366" >&2
  exit 2
fi
umask 077
mkdir -p "$dir"
expires=$(date -u -d "+${days} days" +%Y-%m-%dT%H:%M:%SZ)
token=$(openssl rand -hex 32)
tmp=$(mktemp "$dir/.${name}.XXXXXX")
printf '%s\nexpires: %s\n' "$token" "$expires" >"$tmp"
mv -f "$tmp" "$dir/$name.token"
echo "token for $name (valid until $expires), shown once:"
echo "$token"
echo "dashboard: https://<gateway>:9464/dashboard?token=$token"
