#!/usr/bin/env bash
# Bounded libFuzzer runs of every target (CI: 10 s each), from the corpus kept in
# fuzz/corpus/<target> and the inputs kept under gcm-mock/tests/fuzz/regressions/. New
# inputs land in the corpus; `bash .ci/fuzz.sh 300 && (cd fuzz && cargo fuzz cmin T)` then
# commit keeps them. A crash fails the run and leaves its input under
# fuzz/artifacts/<target>/: keep it in gcm-mock/tests/fuzz/regressions/<target>/ so `cargo test` replays it.
# Usage: bash .ci/fuzz.sh [seconds per target]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-${FUZZ_SECONDS:-10}}
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --quiet
fi
export RUSTC_BOOTSTRAP=1 # the fuzz crate only: cargo fuzz needs -Z flags
cd fuzz
targets=(decode_response plain_text retry_after scenario mock_request v1_response)
cargo fuzz build
for target in "${targets[@]}"; do
  # The kept corpus (minimized with `cargo fuzz cmin`): each run starts where the last stopped.
  corpus=corpus/$target
  mkdir -p "$corpus"
  log=$(mktemp)
  if ! cargo fuzz run "$target" "$corpus" "../gcm-mock/tests/fuzz/regressions/$target" -- -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz $target: FAILED (see fuzz/artifacts/$target)"
    exit 1
  fi
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo '?')
  echo "fuzz $target: ${seconds}s, $runs executions, no crash"
  rm -f "$log"
done
