#!/usr/bin/env bash
# Runs every example offline and checks what it prints, so none of them rots.
set -euo pipefail
cd "$(dirname "$0")/.."

expect() { # expect NAME OUTPUT PATTERN...
  local name=$1 out=$2; shift 2
  for pattern in "$@"; do
    if ! grep -qF -- "$pattern" <<<"$out"; then
      echo "example $name: missing '$pattern' in:"; echo "$out"; exit 1
    fi
  done
  echo "example $name: ok"
}

cargo build -q --locked --examples --workspace
cargo build -q --locked -p gcm-mock --bin gcm-mock

expect walkthrough "$(cargo run -q --locked --example walkthrough)" \
  "canonical     replace 23 with 32 in your database" "unregistered  remove 42" \
  "failed        15: InvalidRegistration" 'retry         ["8"] after 10.0s' "authentication failed"

expect quickstart "$(cargo run -q --locked --example quickstart)" \
  "== FCM v1 multicast" "not registered device-uninstalled" \
  "failed         device-corrupt: INVALID_ARGUMENT" 'retry          ["device-busy"] (Retry-After 1s)' \
  "success        device-busy: message id projects/mock-project/messages/" "device-busy    attempt 2" \
  "== legacy JSON multicast" "canonical      device-moved → device-moved-new"

expect bring_your_own_client "$(cargo run -q --locked --example bring_your_own_client)" \
  "← 200 OK" "delivered to device-1: message id 0:"

expect queued_retry "$(cargo run -q --locked --example queued_retry)" \
  '"not_before"' "canonical      device-moved → device-moved-new" "success        device-slow" "still pending  0"

expect fcm_v1 "$(cargo run -q --locked --example fcm_v1)" \
  "not registered device-uninstalled" "failed         device-corrupt: INVALID_ARGUMENT" \
  'retry          ["device-busy", "device-hot"] (after 1s)' "success        device-hot: projects/mock-project/messages/" \
  "1 access token(s) minted, 1 HTTP/2 connection(s) for 8 requests"

expect "fcm_v1 --subscribe" "$(cargo run -q --locked --example fcm_v1 -- --subscribe news --token T --token U)" \
  "done           T: /topics/news" "reached        2 device(s): [\"T\", \"U\"]"

out=$(cargo run -q --locked -p gcm-queue --example queue_demo)
expect queue_demo "$out" \
  "enqueued job" "not registered 31 (remove them: device-0000, device-0033, device-0066…)" \
  "delivered 969" "mock inbox: 969 deliveries" "gcm_queue_given_up_messages_total 0"
grep -Eq 'done in [0-9.]+ s after [2-9] attempts: Summary \{ status: Done' <<<"$out" ||
  { echo "example queue_demo: no retry round in:"; echo "$out"; exit 1; }

# The README's walkthrough of the mock binary, run as written: it must print something from
# the first call on.
walkthrough=$(awk '/^### The mock server for clients in other languages/{f=1} f&&/^```sh/{g=1;next} g&&/^```/{exit} g' README.md)
[ -n "$walkthrough" ] || { echo "README: no walkthrough of the mock binary"; exit 1; }
out=$(bash -c "$walkthrough" 2>/dev/null)
[ "$(head -n1 <<<"$out")" = " → HTTP 503" ] || { echo "README walkthrough: first call printed: $(head -n1 <<<"$out")"; exit 1; }
expect "README walkthrough" "$out" '"success":1,"failure":1' '{"error":"NotRegistered"}]} → HTTP 200' '"token":"tok-1"'
[ ! -e mock.url ] || { echo "README walkthrough: left mock.url behind"; exit 1; }

# The mock binary for other languages: its routes, then the `send` example.
log=$(mktemp)
target/debug/gcm-mock --listen 127.0.0.1:0 --api-key ci-key --scenario gcm-mock/scenario.example.toml >"$log" 2>/dev/null &
mock=$!
trap 'kill $mock 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$log" ] && break; sleep 0.1; done
url=$(head -n1 "$log")
base=${url%/gcm/send}
send() { cargo run -q --locked --example send -- --endpoint "$url" --api-key ci-key "$@"; }

set +e
out=$(send --to tok-1); code=$?
set -e
[ "$code" = 3 ] || { echo "send: expected exit 3 on a scripted 503, got $code: $out"; exit 1; }
expect "send (503)" "$out" '"retry":["tok-1"]' '"retry_delay_seconds":30.0'
curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: key=ci-key' -d 'registration_id=x' "$url" | grep -q 503
curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: key=ci-key' -d 'registration_id=x' "$url" | grep -q 500
expect "curl json" "$(curl -s -H 'Authorization: key=ci-key' -H 'Content-Type: application/json' \
  -d '{"registration_ids":["tok-1","tok-gone"],"data":{"hello":"world"}}' "$url")" \
  '"success":1,"failure":1' '{"error":"NotRegistered"}'
expect "curl plain text" "$(curl -s -H 'Authorization: key=ci-key' -d 'registration_id=tok-canonical&data.hello=world' "$url")" \
  "registration_id=tok-canonical-new"
set +e
out=$(send --to tok-1 --to tok-canonical --to tok-gone --to tok-invalid --data hello=world); code=$?
set -e
[ "$code" = 4 ] || { echo "send: expected exit 4 with undelivered tokens, got $code: $out"; exit 1; }
expect "send (mixed)" "$out" \
  '"canonical":{"tok-canonical":"tok-canonical-new"}' '"not_registered":["tok-gone"]' \
  '"failed":{"tok-invalid":"InvalidRegistration"}'
set +e
out=$(send --to "" 2>&1); code=$?
set -e
[ "$code" = 2 ] || { echo "send: expected exit 2 for an empty token, got $code: $out"; exit 1; }
expect "send (empty token)" "$out" "a token cannot be empty"
# A reader that closes the pipe early gets no panic (exit 101) from the example: a report
# of 2500 tokens (three requests) is larger than the pipe's buffer.
python3 -c 'import json; print(json.dumps(["pipe-%04d" % i for i in range(2500)]))' >/tmp/send-pipe.tokens
set +e
send --tokens-file /tmp/send-pipe.tokens 2>/tmp/send-pipe.err | head -c 200 >/dev/null
code=${PIPESTATUS[0]}
set -e
if [ "$code" = 101 ] || grep -q panicked /tmp/send-pipe.err; then
  echo "send: panicked on a closed pipe (exit $code)"; cat /tmp/send-pipe.err; exit 1
fi
echo "example send (closed pipe): ok"
expect "inbox" "$(curl -s "$base/_mock/inbox")" '"token":"tok-1"' '"hello":"world"'
expect "v1 key file" "$(curl -s "$base/_mock/service-account")" "\"token_uri\": \"$base/token\"" '"project_id": "mock-project"'
kill -TERM $mock
wait $mock
trap - EXIT
echo "mock binary: clean exit on SIGTERM"
