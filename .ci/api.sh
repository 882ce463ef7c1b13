#!/usr/bin/env bash
# gcm-worker serve as an operator runs it: a live serve with API keys, a worker sending to a
# gcm-mock, all on loopback ports the system picks. Runs the README's curl examples (they
# must work as written), checks what they recorded, then schemathesis (PyPI) against the
# OpenAPI document the server publishes: no 5xx, no answer its schema does not allow.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=${CARGO_INSTALL_ROOT:-${HOME:-/tmp}/.cache/gcm-ci/tools}
venv=$tools/schemathesis-4.32.5
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check schemathesis==4.32.5
fi
# The webhook receiver verifies signatures with an implementation nobody here wrote.
"$venv/bin/python" -c 'import standardwebhooks' 2>/dev/null ||
  "$venv/bin/pip" install --quiet --disable-pip-version-check standardwebhooks==1.3.0
command -v jq >/dev/null || { sudo -n apt-get install -y -qq jq >/dev/null 2>&1 || apt-get install -y -qq jq >/dev/null; }
# The dashboard's browser: Debian's Chromium, driven by playwright-core from npm (no
# browser download: Playwright's own is not reachable, and not needed).
if [ ! -x /usr/bin/chromium ]; then
  sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo -n)
  "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
playwright=$tools/playwright-1.64.1
[ -d "$playwright/node_modules/playwright-core" ] ||
  (mkdir -p "$playwright" && cd "$playwright" && npm install --silent --no-audit --no-fund playwright-core@1.64.1)

cargo build -q --locked -p gcm-queue --bin gcm-worker
cargo build -q --locked -p gcm-mock --bin gcm-mock
scratch=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$scratch"; }
trap cleanup EXIT

wait_for_line() { # wait_for_line FILE PATTERN: the first line of FILE matching PATTERN
  for _ in $(seq 300); do
    if grep -m1 -- "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "no line matching $2 in $1:"; cat "$1"; return 1
}

# Two tokens the audience example needs: one uninstalled, one malformed; and one for each
# of the dashboard's runs, refused on its first 3 attempts (given up: the worker makes 3).
printf '[tokens.tok-gone]\nresult = "not_registered"\n[tokens.tok-invalid]\nresult = "invalid"\n' >"$scratch/scenario.toml"
# (With a Retry-After of 1 s: FCM's own floor for an unavailable server is 10 s.)
for run in 1 2 3; do
  printf '[tokens.tok-flaky-%s]\nresult = "unavailable"\ntimes = 3\nretry_after = "1"\n' "$run" >>"$scratch/scenario.toml"
done
target/debug/gcm-mock --api-key KEY --scenario "$scratch/scenario.toml" >"$scratch/mock.out" 2>/dev/null &
pids+=($!)
mock=$(wait_for_line "$scratch/mock.out" '^http://')
mock=${mock%/gcm/send}
curl -sS --fail "$mock/_mock/service-account" >"$scratch/service-account.json"

# The shop's webhook: a receiver that checks every signature with PyPI's standardwebhooks.
secret="whsec_$(head -c 32 /dev/urandom | base64)"
"$venv/bin/python" gcm-queue/tests/platform/receiver.py "$scratch/hooks.jsonl" ok "$secret" >"$scratch/hooks.out" &
pids+=($!)
export HOOKS="http://127.0.0.1:$(wait_for_line "$scratch/hooks.out" '^[0-9]')"

queue="sqlite:$scratch/queue.db"
key=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
read_key=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf 'ci:send,read,metrics:%s\nviewer:read:%s\n' "$key" "$read_key" >"$scratch/keys"
# One project, as the README's platform section configures them: every job is its, and
# posts its settlements to the shop's webhook (or a /jobs/ URL of its own).
printf 'queue = "%s"\n[projects.shop]\ncredentials = "%s"\nendpoint = "%s"\nrate = 600000\n' \
  "$queue" "$scratch/service-account.json" "$mock" >"$scratch/gcm-worker.toml"
printf '[projects.shop.webhook]\nurl = "%s/shop"\nsecrets = ["%s"]\njob-urls = ["%s/jobs/"]\nfirst-retry = "100ms"\n' \
  "$HOOKS" "$secret" "$HOOKS" >>"$scratch/gcm-worker.toml"
target/debug/gcm-worker --config "$scratch/gcm-worker.toml" --log-format json serve --listen 127.0.0.1:0 \
  --api-keys-file "$scratch/keys" 2>"$scratch/serve.log" &
serve=$!
pids+=($serve)
target/debug/gcm-worker --config "$scratch/gcm-worker.toml" run --backoff-ms 100 --max-attempts 3 2>"$scratch/run.log" &
pids+=($!)
addr=$(wait_for_line "$scratch/serve.log" '"serving the API"' | jq -r '.fields.addr')
export GCM_API="http://$addr" GCM_KEY=$key

# The README's examples, as written.
sed -n '/<!-- api-examples: \.ci/,/<!-- api-examples: end -->/p' gcm-queue/README.md |
  sed -n '/^```sh$/,/^```$/p' | sed '1d;$d' >"$scratch/examples.sh"
[ -s "$scratch/examples.sh" ] || { echo "no API examples found in gcm-queue/README.md"; exit 1; }
echo "== the README's API examples"
out=$(bash -euo pipefail -x "$scratch/examples.sh" 2>"$scratch/examples.trace") ||
  { cat "$scratch/examples.trace"; echo "$out"; exit 1; }
echo "$out"
grep -q '"status":"cancelled"' <<<"$out" || { echo "the planned send was not cancelled"; exit 1; }

auth=(-H "Authorization: Bearer $GCM_KEY")
wait_delivered() { # wait_delivered CORRELATION_ID COUNT: that many of its records `delivered`
  for _ in $(seq 300); do
    records=$(curl -sS --fail "${auth[@]}" "$GCM_API/results?correlation_id=$1" | jq '[.records[] | select(.fate == "delivered")] | length')
    [ "$records" = "$2" ] && return 0
    sleep 0.1
  done
  echo "$1: $records of $2 delivered"; cat "$scratch/run.log"; exit 1
}

# The welcome job reaches the mock: three records, each delivered.
wait_delivered welcome-batch 3
echo "== welcome-batch: 3 of 3 delivered"

# The subscription reaches the mock: two records, each delivered, and the mock's topic lists both.
wait_delivered news-subscribers 2
topics=$(curl -sS --fail "$mock/_mock/topics")
[ "$topics" = '{"news":["token-1","token-2"]}' ] || { echo "the mock's topics: $topics"; exit 1; }
echo "== news-subscribers: 2 of 2 subscribed"

# The project's example is sent for it, and so are the others (the only project).
wait_delivered restock 1
projects=$(curl -sS --fail "${auth[@]}" "$GCM_API/results?limit=100" | jq -c '[.records[].project] | unique')
[ "$projects" = '["shop"]' ] || { echo "the records' projects: $projects"; exit 1; }
echo "== restock: sent for the shop project, as every other example"

# The audience example: once its three fates are in, the audience lost tok-gone and
# flagged tok-invalid, and its feed says so once each.
for _ in $(seq 300); do
  fates=$(curl -sS --fail "${auth[@]}" "$GCM_API/results?correlation_id=sale" | jq '.records | length')
  [ "$fates" = 3 ] && break
  sleep 0.1
done
[ "$fates" = 3 ] || { echo "sale: $fates of 3 fates"; exit 1; }
held=$(curl -sS --fail "${auth[@]}" "$GCM_API/audiences/shop-users" | jq -c '.tokens')
[ "$held" = '[{"token":"tok-invalid","flagged":"INVALID_ARGUMENT"},{"token":"token-6"}]' ] || { echo "shop-users: $held"; exit 1; }
changes=$(curl -sS --fail "${auth[@]}" "$GCM_API/audiences/shop-users/changes?since=0" | jq -c '[.changes[] | [.token, .change]] | sort')
[ "$changes" = '[["tok-gone","removed"],["tok-invalid","flagged"]]' ] || { echo "shop-users changes: $changes"; exit 1; }
echo "== shop-users: tok-gone removed, tok-invalid flagged"

# Every settlement reached the shop's webhook, signed (the receiver verified each), the
# promo at its own URL: once each after de-duplicating by webhook-id, all delivered.
for _ in $(seq 300); do
  pending=$(curl -sS --fail "${auth[@]}" "$GCM_API/webhooks?since=0" | jq '[.deliveries[] | select(.state != "delivered")] | length')
  [ "$pending" = 0 ] && break
  sleep 0.1
done
deliveries=$(curl -sS --fail "${auth[@]}" "$GCM_API/webhooks?since=0")
[ "$pending" = 0 ] || { echo "webhook deliveries not delivered: $deliveries"; cat "$scratch/run.log"; exit 1; }
written=$(jq -c '[.deliveries[].id] | sort' <<<"$deliveries")
received=$(jq -sc '[.[] | select(.event == "arrived") | .id] | unique' "$scratch/hooks.jsonl")
[ "$written" = "$received" ] || { echo "written $written, received $received"; exit 1; }
jq -se 'all(.[] | select(.event == "arrived"); .verified == [true])' "$scratch/hooks.jsonl" >/dev/null ||
  { echo "a delivery's signature did not verify"; exit 1; }
promo=$(jq -sc '[.[] | select(.event == "arrived" and .body.data.correlation_id == "promo") | .path] | unique' "$scratch/hooks.jsonl")
[ "$promo" = '["/jobs/promo"]' ] || { echo "the promo's deliveries went to $promo"; exit 1; }
echo "== webhooks: $(jq length <<<"$written") deliveries, each signed and received once after de-duplicating"

# The README's prune keeps what is recent; with nothing kept, the finished jobs and their
# records go (the welcome job, the subscription, the restock, the cancelled send).
pruned=$(target/debug/gcm-worker prune --queue "$queue" --retain-results 7d --retain-jobs 30d)
[ "$pruned" = '{"result_blocks":0,"audience_changes":0,"webhook_deliveries":0,"jobs":0,"tasks":0}' ] || { echo "prune deleted recent things: $pruned"; exit 1; }
sleep 1 # apalis dates its tasks to the second: past the second they were done in
pruned=$(target/debug/gcm-worker prune --queue "$queue" --retain-results 0s --retain-jobs 0s)
jq -e '.jobs >= 5 and .result_blocks >= 5 and .audience_changes == 2 and .webhook_deliveries >= 5 and .tasks >= 4' <<<"$pruned" >/dev/null || { echo "prune: $pruned"; exit 1; }
records=$(curl -sS --fail "${auth[@]}" "$GCM_API/results?correlation_id=welcome-batch" | jq '.records | length')
[ "$records" = 0 ] || { echo "$records welcome-batch records left after the prune"; exit 1; }
echo "== prune: $pruned"

# Three runs in a row: a suite that passes once by luck fails here.
echo "== the dashboard in Chromium, 3 runs"
shots=$PWD/target/ui-screenshots
mkdir -p "$shots"
cp .ci/ui.mjs "$playwright/ui.mjs"
started=$SECONDS
for run in 1 2 3; do
  GCM_KEY=$key READ_KEY=$read_key SHOTS=$shots RUN=$run node "$playwright/ui.mjs"
done
echo "== the dashboard: 3 runs passed in $((SECONDS - started)) s"

echo "== schemathesis"
curl -sS --fail "${auth[@]}" "$GCM_API/openapi.json" >"$scratch/openapi.json"
# use_after_free is left out: DELETE /jobs/<id> cancels a job, which stays readable.
# From the scratch folder: schemathesis keeps a cache where it runs.
config=$PWD/.ci/schemathesis.toml
(cd "$scratch" && "$venv/bin/schemathesis" --config-file "$config" run "$scratch/openapi.json" \
  --url "$GCM_API" -H "Authorization: Bearer $GCM_KEY" --checks all --exclude-checks use_after_free \
  --max-time "${SCHEMATHESIS_SECONDS:-20}" --seed 1 --no-color)

# A clean stop: SIGTERM, exit status 0.
kill -TERM "$serve"
wait "$serve"
echo "== serve stopped cleanly"
