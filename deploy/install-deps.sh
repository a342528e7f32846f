#!/usr/bin/env bash
# Installs every Debian 12 package RDG's build, tests, benchmarks and interop tools need.
# Idempotent: does nothing (and touches no network) when everything is already installed.
# Extra package names given as arguments are installed too (deploy/fuzz.sh adds clang).
set -euo pipefail

packages=(
  # build
  cmake g++ ninja-build ccache pkg-config git
  # libraries
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libdcmtk-dev libssl-dev libsqlite3-dev libpq-dev libgoogle-glog-dev
  libcli11-dev nlohmann-json3-dev librsvg2-dev libpango1.0-dev fonts-dejavu-core fonts-noto-cjk libcpp-httplib-dev libjs-chart.js
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # runtime and interop tools; the browser and Prometheus parser of the monitoring tests,
  # pdftotext/pdftoppm for the printed reports
  openssl dcmtk python3 python3-pydicom python3-grpcio python3-protobuf python3-hl7
  python3-prometheus-client chromium poppler-utils
  # dciodvfy, the DICOM validator the report SR and PDF are checked with (dsrdump is dcmtk's)
  dicom3tools
  # the audit repository of the ATNA export tests (syslog over TLS) and the schema check of its
  # messages; promtool (in prometheus) checks and unit-tests the alerting rules
  rsyslog rsyslog-openssl libxml2-utils prometheus
  # Orthanc, the PACS a county would otherwise install: the peer of the ingest benchmark, run in
  # a network namespace of its own (iproute2 brings its loopback up), the county PACS of the
  # outbound tests, and with its DICOMweb plugin the DICOMweb client of the DICOMweb tests
  orthanc orthanc-dicomweb iproute2
  # PostgreSQL 15, the index shared by several gateways: the tests start throwaway clusters of
  # their own (tests/integration/pg_cluster.py); the package's default cluster is not started.
  # psycopg2: the integration tests read a PostgreSQL index as they read a SQLite one
  postgresql-15 python3-psycopg2
  # HAProxy, the load balancer in front of gateway replicas (deploy/replicas.sh, the failover
  # test); like PostgreSQL's, the package's own service is not used
  haproxy
  "$@"
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Packages with daemons (rsyslog, prometheus) must not start them: the tests start their own, on
# loopback. A policy-rc.d that refuses every start does that; one already there (containers
# ship one) is left alone.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# installed by rdg deploy/install-deps.sh while it runs\nexit 101\n' |
    $sudo tee "$policy" >/dev/null
  $sudo chmod 0755 "$policy"
  trap '$sudo rm -f "$policy"' EXIT
fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
