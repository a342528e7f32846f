#!/usr/bin/env bash
# Quick start: install, build, create the dev PKI (var/pki; the CA's key in var/pki-ca, outside
# what the gateway reads) and run the gateway on the embedded default — SQLite index and blobs in
# ./var/data — with deploy/config/demo.textproto (127.0.0.1:50051).
# Extra arguments go to rdg-gateway (e.g. --listen 127.0.0.1:0 --ready-file var/ready).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/build.sh
bash deploy/dev-pki.sh var/pki
exec build/bin/rdg-gateway --config deploy/config/demo.textproto --data-dir var/data "$@"
