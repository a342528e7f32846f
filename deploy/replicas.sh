#!/usr/bin/env bash
# Two gateway replicas on one PostgreSQL index and one shared data dir, behind HAProxy, on this
# machine: how a province runs several gateways (each on its own host, the data dir on NFS, the
# database on its own server), shown and tried on one. Build first (deploy/build.sh) and create
# the dev PKI (deploy/dev-pki.sh var/pki, as deploy/start-dev-gateway.sh does).
#
#   deploy/replicas.sh start [DIR]   # DIR default var/replicas; clients use the printed address
#   deploy/replicas.sh stop [DIR]
#
# DIR holds the throwaway PostgreSQL cluster's state (pg/: tests/integration/pg_cluster.py, on
# 127.0.0.1 at a free port), the shared data dir (data/), each replica's log and ready file
# (g1/, g2/), the configuration they share (gateway.textproto: deploy/config/demo.textproto on
# that database) and haproxy.cfg (deploy/haproxy/rdg-gateways.cfg filled in). RDG_LB_LISTEN sets
# HAProxy's address (default 127.0.0.1:50070).
set -euo pipefail
cd "$(dirname "$0")/.."
action=${1:-}
dir=${2:-var/replicas}
lb=${RDG_LB_LISTEN:-127.0.0.1:50070}

stop() {
  [[ -f "$dir/haproxy.pid" ]] && kill "$(cat "$dir/haproxy.pid")" 2>/dev/null || true
  for g in g1 g2; do
    [[ -f "$dir/$g/pid" ]] && kill "$(cat "$dir/$g/pid")" 2>/dev/null || true
  done
  for g in g1 g2; do  # their shutdown grace, then the database
    for _ in $(seq 60); do
      [[ -f "$dir/$g/pid" ]] && kill -0 "$(cat "$dir/$g/pid")" 2>/dev/null || break
      sleep 0.5
    done
    rm -f "$dir/$g/pid"
  done
  /usr/bin/python3 tests/integration/pg_cluster.py stop "$dir/pg"
  rm -f "$dir/haproxy.pid"
}

case "$action" in
  start) ;;
  stop) stop; exit 0 ;;
  *) echo "usage: $0 start|stop [DIR]" >&2; exit 2 ;;
esac

[[ -x build/bin/rdg-gateway ]] || { echo "build first: deploy/build.sh" >&2; exit 1; }
[[ -f var/pki/ca.pem ]] || { echo "create the dev PKI first: deploy/dev-pki.sh var/pki" >&2; exit 1; }
command -v haproxy >/dev/null || { echo "haproxy is missing: deploy/install-deps.sh" >&2; exit 1; }
mkdir -p "$dir/g1" "$dir/g2"
/usr/bin/python3 tests/integration/pg_cluster.py start "$dir/pg"
dsn=$(cat "$dir/pg/dsn")
/usr/bin/python3 - "$dsn" "$dir/gateway.textproto" <<'PY'
import sys
with open("deploy/config/demo.textproto") as f:
    config = f.read()
index = 'index {\n  postgres { conninfo: "%s" }\n}' % sys.argv[1]
assert "index {\n  sqlite {}\n}" in config
with open(sys.argv[2], "w") as f:
    f.write(config.replace("index {\n  sqlite {}\n}", index))
PY
chmod 600 "$dir/gateway.textproto"  # it holds the database's password
servers=""
for g in g1 g2; do
  rm -f "$dir/$g/ready"
  nohup build/bin/rdg-gateway --config "$dir/gateway.textproto" --data-dir "$dir/data" \
    --listen 127.0.0.1:0 --monitoring-listen 127.0.0.1:0 --ready-file "$dir/$g/ready" \
    > "$dir/$g/gateway.log" 2>&1 &
  echo $! > "$dir/$g/pid"
  for _ in $(seq 120); do [[ -s "$dir/$g/ready" ]] && break; sleep 0.5; done
  [[ -s "$dir/$g/ready" ]] || { echo "$g did not start: see $dir/$g/gateway.log" >&2; stop; exit 1; }
  { read -r grpc_port; read -r monitoring_port; } < "$dir/$g/ready"
  servers+="    server $g 127.0.0.1:$grpc_port check port $monitoring_port"$'\n'
done
sed -e "s|@LISTEN@|$lb|" -e "s|@PIDFILE@|$(realpath -m "$dir")/haproxy.pid|" \
  deploy/haproxy/rdg-gateways.cfg > "$dir/haproxy.cfg"
printf '%s' "$servers" >> "$dir/haproxy.cfg"
haproxy -c -q -f "$dir/haproxy.cfg"
haproxy -D -f "$dir/haproxy.cfg"
echo "two replicas behind HAProxy: RDG_GATEWAY=$lb (logs: $dir/g1, $dir/g2; stop: $0 stop $dir)"
