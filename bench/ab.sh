#!/usr/bin/env bash
# Before/after: runs the same benchmarks against two or more builds, interleaved A B B A (or
# A B C C B A) so that a machine that drifts (heat, a neighbour) shows up as A's two runs
# disagreeing rather than as a difference between the builds. Each directory holds a
# release `tern` and `tern-bench`.
#
#   bench/ab.sh DIR_A DIR_B [DIR_C ...] OUT_DIR
#
# Writes one log per run (OUT_DIR/<bench>.<A|B>.<round>.log) and prints each run's summary
# line. Needs PostgreSQL at 127.0.0.1:5432 for the PostgreSQL run (database tern_bench is
# dropped and made again before each run). ONLY="chat idle" runs just those benchmarks.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: bench/ab.sh DIR_A DIR_B [DIR_C ...] OUT_DIR" >&2; exit 2; }
dirs=("${@:1:$#-1}") out=${!#}
labels=(A B C D E F G H)
mkdir -p "$out"
pg=postgres://postgres@127.0.0.1:5432/tern_bench

benches=(
  "api-send-sqlite|api-send --clients 64 --seconds 15"
  "api-send-pg|--database-url $pg api-send --clients 64 --seconds 15"
  "chat|chat --users 10000 --rate 2000 --processes 3 --seconds 20"
  "idle|idle --users 15000 --processes 3 --seconds 20"
  "room-broadcast|room-broadcast --members 15000 --processes 3 --senders 4 --rate 20 --seconds 20"
)

run() { # label dir round name args
  local label=$1 dir=$2 round=$3 name=$4 args=$5
  if [[ $args == *tern_bench* ]]; then
    psql -q -h 127.0.0.1 -U postgres -d test -c 'drop database if exists tern_bench with (force)' -c 'create database tern_bench'
  fi
  local log="$out/$name.$label.$round.log"
  echo "== $name $label round $round (load $(cut -d' ' -f1 /proc/loadavg))" | tee "$log"
  # shellcheck disable=SC2086
  "$dir/tern-bench" --tern "$dir/tern" $args >>"$log" 2>&1 || echo "   (exit $?)" | tee -a "$log"
  tail -n 12 "$log" | sed 's/^/   /'
  sleep 5
}

for entry in "${benches[@]}"; do
  name=${entry%%|*} args=${entry#*|}
  if [[ -n ${ONLY:-} && " $ONLY " != *" $name "* ]]; then continue; fi
  for i in "${!dirs[@]}"; do run "${labels[$i]}" "${dirs[$i]}" 1 "$name" "$args"; done
  for ((i = ${#dirs[@]} - 1; i >= 0; i--)); do run "${labels[$i]}" "${dirs[$i]}" 2 "$name" "$args"; done
done
