#!/usr/bin/env bash
# Fuzzes the parsers a stranger can reach (platform/fuzz: cargo fuzz, libFuzzer) and prints a
# table of what each target did. See docs/reliability.md#fuzzing.
#
#   bash bench/fuzz.sh [SECONDS] [TARGET...]    each target SECONDS (default 20), all by default
#
# Environment:
#   FUZZ_JOBS=2        targets run at the same time
#   FUZZ_NICE=0        niceness of the fuzzers (a campaign beside other work: 10)
#   FUZZ_OUT=DIR       where new inputs, crashes and logs go (default: a new temporary dir)
#   FUZZ_MERGE=1       afterwards, minimise committed corpus + new inputs back into
#                      platform/fuzz/corpus/TARGET (what a campaign commits)
#   FUZZ_PROFILE=dev   build the targets unoptimised (a few times faster to build, several
#                      times slower to run): what .ci/run's short run uses
#
# Only a stable toolchain is needed: cargo fuzz's nightly-only flags are let through with
# RUSTC_BOOTSTRAP=1. cargo-fuzz is installed from crates.io when missing. The committed
# corpus is read, never written (unless FUZZ_MERGE=1); new inputs go to FUZZ_OUT. Exits 1 if
# any target crashed, with the crashing input kept in FUZZ_OUT/TARGET/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-20}"
shift || true
jobs="${FUZZ_JOBS:-2}"
niceness="${FUZZ_NICE:-0}"
out="${FUZZ_OUT:-$(mktemp -d /tmp/tern-fuzz.XXXXXX)}"
mkdir -p "$out"

export RUSTC_BOOTSTRAP=1
cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

cd "$root/platform"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)

# Release build with debug assertions (so an integer overflow is a crash) and no sanitizer:
# the code under test forbids `unsafe`, and without ASan each target runs several times faster.
profile="${FUZZ_PROFILE:-release}"
case "$profile" in
  release) build_flags=(-s none -a); profile_dir=release ;;
  dev) build_flags=(-s none --dev); profile_dir=debug ;;
  *) echo "FUZZ_PROFILE is release or dev, not $profile" >&2; exit 2 ;;
esac
cargo fuzz build "${build_flags[@]}" >/dev/null 2>"$out/build.log" \
  || { cat "$out/build.log"; exit 1; }
triple="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="${CARGO_TARGET_DIR:-$root/platform/fuzz/target}/$triple/$profile_dir"

run_one() {
  local t="$1" dir="$out/$1"
  mkdir -p "$dir/new"
  local start=$SECONDS
  set +e
  nice -n "$niceness" "$bin_dir/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$dir/" "$dir/new" "$root/platform/fuzz/corpus/$t" \
    >"$dir/log" 2>&1
  local rc=$?
  set -e
  echo "$rc $((SECONDS - start))" >"$dir/result"
}

running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
  run_one "$t" &
  running=$((running + 1))
done
wait

failed=0
printf '| target | seconds | executions | corpus (inputs / bytes) | crashes |\n'
printf '| --- | --- | --- | --- | --- |\n'
for t in "${targets[@]}"; do
  dir="$out/$t"
  read -r rc took <"$dir/result"
  execs="$(sed -n 's/^stat::number_of_executed_units: //p' "$dir/log" | tail -1)"
  corp="$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$dir/log" | tail -1 | sed 's/corp: //')"
  crashes="$(find "$dir" -maxdepth 1 \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)"
  printf '| %s | %s | %s | %s | %s |\n' "$t" "$took" "${execs:-?}" "${corp:-?}" "$crashes"
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    failed=1
    echo "$t failed (exit $rc); last lines of $dir/log:" >&2
    tail -30 "$dir/log" >&2
  fi
done

if [ "${FUZZ_MERGE:-0}" = 1 ]; then
  for t in "${targets[@]}"; do
    committed="$root/platform/fuzz/corpus/$t"
    merged="$out/$t/merged"
    mkdir -p "$merged" "$committed"
    "$bin_dir/$t" -set_cover_merge=1 -use_counters=0 -timeout=10 "$merged" "$committed" "$out/$t/new" >"$out/$t/merge.log" 2>&1
    rm -f "$committed"/*
    cp "$merged"/* "$committed"/ 2>/dev/null || true
  done
  echo "merged: $(du -sh --apparent-size "$root/platform/fuzz/corpus" | cut -f1) in platform/fuzz/corpus"
fi
echo "logs, new inputs and crashes: $out"
exit "$failed"
