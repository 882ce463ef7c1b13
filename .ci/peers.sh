#!/usr/bin/env bash
# Real third-party clients against the gcm-mock binary, installed into a scratch folder:
# node-gcm 1.1.4 (npm) and python-gcm 0.4 (PyPI) on the legacy endpoint, and Google's own
# google-auth (PyPI) minting an FCM v1 token from the mock and sending with it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --locked -p gcm-mock --bin gcm-mock
scratch=$(mktemp -d)
(cd "$scratch" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund node-gcm@1.1.4 >/dev/null)
python3 -m pip install --quiet --disable-pip-version-check --target "$scratch/py" python-gcm==0.4 2>/dev/null
python3 -m pip install --quiet --disable-pip-version-check --target "$scratch/v1" google-auth==2.63.0 requests==2.34.2 2>/dev/null

run_against_mock() { # run_against_mock COMMAND...: a fresh mock, its scripted 5xx replies used up
  local log; log=$(mktemp)
  target/debug/gcm-mock --api-key KEY --scenario gcm-mock/scenario.example.toml >"$log" 2>/dev/null &
  local mock=$!
  for _ in $(seq 100); do [ -s "$log" ] && break; sleep 0.1; done
  local url; url=$(head -n1 "$log")
  for _ in 1 2 3; do curl -s -o /dev/null -H 'Authorization: key=KEY' -d 'registration_id=x' "$url"; done
  "$@" "$url" || { kill $mock; return 1; }
  kill $mock; wait $mock 2>/dev/null || true
}
run_against_mock env NODE_PATH="$scratch/node_modules" node peers/node_gcm.js
run_against_mock env PYTHONPATH="$scratch/py" python3 peers/python_gcm.py
run_against_mock env PYTHONPATH="$scratch/v1" python3 peers/google_auth_v1.py
rm -rf "$scratch"
