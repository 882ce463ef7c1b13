#!/usr/bin/env bash
# Real third-party clients against the gcm-mock binary, installed into a scratch folder:
# node-gcm 1.1.4 (npm) and python-gcm 0.4 (PyPI) on the legacy endpoint, Google's own
# google-auth (PyPI) minting an FCM v1 token from the mock and sending with it, and
# firebase-admin for Python (PyPI) and Node (npm, against `gcm-mock --tls`) set up as
# gcm-mock's README says; the JSON firebase-admin writes for messages with every field must
# round-trip through gcm-proto's v1::Content.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --locked -p gcm-mock --bin gcm-mock
cargo build -q --locked --example v1_roundtrip
scratch=$(mktemp -d)
(cd "$scratch" && npm init -y >/dev/null &&
  npm install --silent --no-audit --no-fund node-gcm@1.1.4 firebase-admin@13.10.0 >/dev/null)
python3 -m pip install --quiet --disable-pip-version-check --target "$scratch/py" python-gcm==0.4 2>/dev/null
python3 -m pip install --quiet --disable-pip-version-check --target "$scratch/v1" google-auth==2.63.0 requests==2.34.2 2>/dev/null
python3 -m pip install --quiet --disable-pip-version-check --target "$scratch/admin" firebase-admin==7.7.0 2>/dev/null

run_against_mock() { # run_against_mock [--tls CERT] COMMAND...: a fresh mock, its scripted 5xx replies used up
  local log; log=$(mktemp)
  local tls=() curl_tls=()
  if [ "$1" = --tls ]; then tls=(--tls "$2"); curl_tls=(--cacert "$2"); shift 2; fi
  target/debug/gcm-mock --api-key KEY --scenario gcm-mock/scenario.example.toml "${tls[@]}" >"$log" 2>/dev/null &
  local mock=$!
  for _ in $(seq 100); do [ -s "$log" ] && break; sleep 0.1; done
  local url; url=$(head -n1 "$log")
  for _ in 1 2 3; do curl -s -o /dev/null "${curl_tls[@]}" -H 'Authorization: key=KEY' -d 'registration_id=x' "$url"; done
  "$@" "$url" || { kill $mock; return 1; }
  kill $mock; wait $mock 2>/dev/null || true
}
run_against_mock env NODE_PATH="$scratch/node_modules" node peers/node_gcm.js
run_against_mock env PYTHONPATH="$scratch/py" python3 peers/python_gcm.py
run_against_mock env PYTHONPATH="$scratch/v1" python3 peers/google_auth_v1.py
run_against_mock env PYTHONPATH="$scratch/admin" python3 -W ignore::DeprecationWarning \
  peers/firebase_admin_python.py "$scratch/admin-messages.jsonl"
target/debug/examples/v1_roundtrip "$scratch/admin-messages.jsonl"
node_admin() { # node_admin SEND_URL: Google's hosts are the mock's, whose certificate Node trusts
  local base=${1%/gcm/send}
  env NODE_PATH="$scratch/node_modules" NODE_EXTRA_CA_CERTS="$scratch/mock.pem" GCM_MOCK_ADDR="${base#https://}" \
    node --require ./peers/google_hosts.js peers/firebase_admin_node.js "$base"
}
run_against_mock --tls "$scratch/mock.pem" node_admin
rm -rf "$scratch"
