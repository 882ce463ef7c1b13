# Helpers for .ci/run: timed steps, and the build cache outside the clone.

step_timings=()
ci_started=$SECONDS

# step NAME COMMAND...: runs COMMAND under a heading and records how long it took.
step() {
  local name=$1 started=$SECONDS
  shift
  echo "== $name"
  "$@"
  local took=$((SECONDS - started))
  step_timings+=("$(printf '%5d s  %s' "$took" "$name")")
  echo "-- $name: $took s"
}

print_timings() {
  echo "== step timings"
  printf '%s\n' "${step_timings[@]}"
  printf '%5d s  all steps\n' $((SECONDS - ci_started))
}

# use_cache LINK CACHE ENTRY: LINK (absent) becomes a link to CACHE/ENTRY. A new ENTRY starts
# as the newest entry of the same kind (a restore key); entries beyond the two newest go.
use_cache() {
  local link=$1 cache=$2 entry=$3
  [[ -e $link || -L $link ]] && return 0
  mkdir -p "$cache"
  local kind=${entry%-*}
  # An entry that grew past 40 GiB (targets of many clones) starts again from nothing.
  if [[ -d $cache/$entry ]] && (($(du -s --block-size=1G "$cache/$entry" | cut -f1) > 40)); then
    rm -rf "${cache:?}/$entry"
  fi
  if [[ ! -d $cache/$entry ]]; then
    local newest
    newest=$(ls -1dt "$cache/$kind"-* 2>/dev/null | head -n 1 || true)
    if [[ -n $newest ]]; then mv "$newest" "$cache/$entry"; else mkdir "$cache/$entry"; fi
  fi
  touch "$cache/$entry"
  ls -1dt "$cache/$kind"-* | tail -n +3 | xargs -r rm -rf
  ln -s "$cache/$entry" "$link"
}
