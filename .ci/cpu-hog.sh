#!/usr/bin/env bash
# cpu-hog.sh COMMAND...: runs COMMAND while one busy loop per core competes for the CPU, as
# on a shared CI runner, and exits with COMMAND's status. The loops end with it.
set -uo pipefail
hogs=()
for _ in $(seq "$(nproc)"); do
  (while :; do :; done) &
  hogs+=($!)
done
trap 'kill "${hogs[@]}" 2>/dev/null' EXIT
"$@"
