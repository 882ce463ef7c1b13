#!/usr/bin/env bash
# Runs every criterion benchmark three times (each run a saved baseline named runN), then
# prints, for each row of BENCHMARKS.md, the median of each side, the ratio of each run (ours
# against the baseline of the same run), their median and spread. Usage: bash scripts/benchmarks.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
for i in $(seq "$runs"); do
  cargo bench --locked -p gcm-proto --bench core -- --save-baseline "run$i" >/dev/null
  cargo bench --locked -p gcm-hyper --bench e2e -- --save-baseline "run$i" >/dev/null
  cargo bench --locked -p gcm-hyper --bench v1 -- --save-baseline "run$i" >/dev/null
  cargo bench --locked -p gcm-mock --bench engine -- --save-baseline "run$i" >/dev/null
  cargo bench --locked -p gcm-mock --bench load -- --save-baseline "run$i" >/dev/null
done
python3 scripts/bench_table.py "$runs"
cargo bench --locked -p gcm-hyper --bench rss 2>/dev/null | tail -n1
cargo bench --locked -p gcm-hyper --bench multicast_memory 2>/dev/null | tail -n4
