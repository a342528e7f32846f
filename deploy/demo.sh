#!/usr/bin/env bash
# The whole story with the command-line tools, against the quick-start gateway
# (./deploy/start-dev-gateway.sh running in another shell): a township clinic uploads a CT, the
# county radiologist claims, fetches and signs a final report, the clinic receives it, verifies
# it with the openssl command line alone and acknowledges it. Then the same for a STAT ECG read
# by the county cardiologist who fetches its rendered tracing and signs with an SM2 key (a
# critical result), and for a lab panel with a critical potassium (危急值) sent as an HL7 v2
# message: it jumps the county lab physician's worklist and must be acknowledged by a deadline.
#
#   ./deploy/demo.sh [GATEWAY]        (default 127.0.0.1:50051, PKI in var/pki)
#
# RDG_DEMO_PKI and RDG_DEMO_BIN (absolute paths) run it with another PKI and other binaries, e.g.
# an installed tree (tests/integration/test_install.py does).
set -euo pipefail
cd "$(dirname "$0")/.."
gateway=${1:-127.0.0.1:50051}
pki=${RDG_DEMO_PKI:-var/pki}
bin=${RDG_DEMO_BIN:-build/bin}
samples=/usr/lib/python3/dist-packages/pydicom/data/test_files
work=$(mktemp -d /tmp/rdg-demo-XXXXXX)
trap 'rm -rf "$work"' EXIT

export RDG_GATEWAY=$gateway RDG_CA=$pki/ca.pem
as() { local name=$1; shift; RDG_CERT=$pki/$name.pem RDG_KEY=$pki/$name.key "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
json_field() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

step "1. Township clinic A1 uploads a chest CT (STAT) and a 12-lead ECG (STAT)"
as clinic-a1 $bin/rdg-clinic upload --priority STAT "$samples/CT_small.dcm" "$samples/waveform_ecg.dcm"

step "2. The county A radiologist's worklist (most urgent first)"
as reader-a-rad $bin/rdg-reader worklist
ct=$(as reader-a-rad $bin/rdg-reader --json worklist --modality CT | json_field "d['items'][0]['exam']['exam_id']")
ecg=$(as reader-a-ecg-tls $bin/rdg-reader --json worklist --modality ECG | json_field "d['items'][0]['exam']['exam_id']")

step "3. Radiologist claims the CT and fetches it (byte-identical DICOM)"
as reader-a-rad $bin/rdg-reader claim "$ct"
as reader-a-rad $bin/rdg-reader fetch "$ct" --out "$work/fetched"

step "4. Radiologist signs the FINAL report with their own ECDSA key (CMS, SHA-256)"
as reader-a-rad $bin/rdg-reader report "$ct" --final \
  --findings "No focal consolidation. No pleural effusion. Heart size normal." \
  --impression "Normal chest CT."

step "5. The cardiologist claims the ECG, fetches it with its rendered 12-lead tracing (SVG, PNG)"
as reader-a-ecg-tls $bin/rdg-reader claim "$ecg"
as reader-a-ecg-tls $bin/rdg-reader fetch "$ecg" --out "$work/ecg"

step "5b. ...and signs a critical FINAL report with an SM2 key"
as reader-a-ecg-tls $bin/rdg-reader report "$ecg" --final --critical \
  --sign-key $pki/reader-a-ecg.key --sign-cert $pki/reader-a-ecg.pem \
  --findings "ST elevation in V1-V4 with reciprocal changes." \
  --impression "Acute anterior STEMI - activate the chest pain pathway."

step "5c. The clinic's lab system sends electrolytes with a critical potassium (HL7 v2 ORU^R01)"
now=$(date -u +%Y%m%d%H%M%S)
printf '%s\r' \
  "MSH|^~\\&|LIS|CLINIC-A1|RDG|COUNTY-A|$now||ORU^R01^ORU_R01|DEMO-$now|P|2.5.1" \
  "PID|1||PAT-1001^^^CLINIC-A1^MR||Wang^Fang||19900307|F" \
  "ORC|RE|PL-$now|F-$now" \
  "OBR|1|PL-$now|F-$now|LYTES^Electrolytes|||$now" \
  "OBX|1|NM|2823-3^Potassium^LN||6.8|mmol/L|3.5-5.3|HH|||F" \
  "OBX|2|NM|2951-2^Sodium^LN||138|mmol/L|137-147|N|||F" > "$work/lytes.hl7"
as clinic-a1 $bin/rdg-clinic upload "$work/lytes.hl7"
lab=$(as reader-a-lab $bin/rdg-reader --json worklist --modality LAB | json_field "d['items'][0]['exam']['exam_id']")
as reader-a-lab $bin/rdg-reader worklist --modality LAB

step "5d. The lab physician claims it, sees the results and their trend, signs the FINAL report"
as reader-a-lab $bin/rdg-reader claim "$lab"
as reader-a-lab $bin/rdg-reader priors "$lab"
as reader-a-lab $bin/rdg-reader report "$lab" --final \
  --impression "Hyperkalaemia 6.8 mmol/L (critical value): repeat sample, ECG, treat now."

step "6. The clinic receives its reports"
as clinic-a1 $bin/rdg-clinic reports

step "7. The clinic saves the CT report and verifies it (RDG, then openssl alone)"
as clinic-a1 $bin/rdg-clinic report "$ct" --out "$work/ct-report" | tail -3
openssl cms -verify -binary -inform DER -in "$work/ct-report/report.p7s" \
  -content "$work/ct-report/report.txt" -CAfile $pki/ca.pem -purpose smimesign -out /dev/null

step "8. The ECG report, verified with openssl alone (SM2/SM3, GB/T ID)"
as clinic-a1 $bin/rdg-clinic report "$ecg" --out "$work/ecg-report" | tail -4
openssl verify -CAfile $pki/ca.pem -purpose smimesign "$work/ecg-report/signer.pem"
openssl x509 -in "$work/ecg-report/signer.pem" -pubkey -noout > "$work/ecg-report/signer.pub"
openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt distid:1234567812345678 -pubin \
  -inkey "$work/ecg-report/signer.pub" -in "$work/ecg-report/report.txt" \
  -sigfile "$work/ecg-report/report.sm2.sig"

step "9. The clinic acknowledges them (the critical ones within their deadline)"
as clinic-a1 $bin/rdg-clinic ack "$ecg"
as clinic-a1 $bin/rdg-clinic ack "$lab"
as clinic-a1 $bin/rdg-clinic ack "$ct"

step "Done: every step above is recorded with its time and actor in the gateway's index."
