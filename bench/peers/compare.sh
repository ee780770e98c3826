#!/usr/bin/env bash
# Tern and ejabberd side by side: the same load generator (tern-bench) runs each workload
# against Tern, then against a private ejabberd node (bench/peers/ejabberd/run.sh), one
# after the other, and prints one table. Run it on a quiet machine; see
# bench/peers/README.md for what each figure means and what differs between the two.
#
#   cargo build --release -p tern -p tern-bench
#   bench/peers/compare.sh                  # the full comparison (about 15 minutes)
#   SMALL=1 bench/peers/compare.sh          # a quick check of the whole pipeline
#
# Every variable below can be set in the environment. Raw output goes to $OUT.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BENCH="${BENCH:-$TARGET/release/tern-bench}"
TERN="${TERN:-$TARGET/release/tern}"
EJ="$ROOT/bench/peers/ejabberd/run.sh"
OUT="${OUT:-/tmp/tern-compare-$(date -u +%Y%m%dT%H%M%S)}"

if [ "${SMALL:-0}" = 1 ]; then
  : "${IDLE_USERS:=200}" "${CHAT_USERS:=200}" "${CHAT_RATE:=100}" "${GROUP_MEMBERS:=50}"
  : "${GROUP_MESSAGES:=20}" "${STEP_USERS:=200}" "${STEP_RATES:=100 200}" "${SECONDS_PER_RUN:=10}"
  : "${PROCESSES:=2}"
fi
IDLE_USERS="${IDLE_USERS:-10000}"        # idle: connections held
CHAT_USERS="${CHAT_USERS:-10000}"        # 1:1 chat at the common rate: users online
CHAT_RATE="${CHAT_RATE:-2000}"           # ... and messages/s
GROUP_MEMBERS="${GROUP_MEMBERS:-1000}"   # group fan-out: members online
GROUP_RATE="${GROUP_RATE:-2}"            # ... messages/s to the group
GROUP_MESSAGES="${GROUP_MESSAGES:-60}"
STEP_USERS="${STEP_USERS:-2000}"         # rate stepping: users online
STEP_RATES="${STEP_RATES:-500 1000 2000 3000 4000 5000 6000 8000 10000 12000 16000}"
P99_LIMIT_MS="${P99_LIMIT_MS:-50}"       # a rate is sustained if p99 < this ...
MIN_DELIVERED="${MIN_DELIVERED:-0.99}"   # ... and this share of the sent messages arrived
SECONDS_PER_RUN="${SECONDS_PER_RUN:-30}"
PROCESSES="${PROCESSES:-3}"              # client processes (each holds < 20,000 sockets)

for f in "$BENCH" "$TERN"; do
  [ -x "$f" ] || { echo "missing $f: cargo build --release -p tern -p tern-bench" >&2; exit 1; }
done
mkdir -p "$OUT"
echo "raw output in $OUT" >&2

# field LINE KEY: the value of KEY=... in a bench output line (units stripped).
field() { grep -o "[ ]$2=[^ ]*" <<<"$1" | head -1 | cut -d= -f2 | sed 's/KiB$//;s/ms$//;s/s$//;s|/.*||'; }

# run NAME SERVER ARGS...: one bench run; prints its result line (the last line that
# starts with the scenario's name) and keeps everything in $OUT/NAME-SERVER.log.
run() {
  local name=$1 server=$2; shift 2
  local log="$OUT/$name-$server.log" peer=()
  if [ "$server" = ejabberd ]; then
    "$EJ" stop >/dev/null 2>&1 || true
    "$EJ" start >>"$OUT/ejabberd-start.log" 2>&1
    peer=(--peer ejabberd)
  fi
  echo "== $server: $*" >&2
  "$BENCH" --tern "$TERN" "${peer[@]}" "$@" >"$log" 2>&1 || { echo "failed: see $log" >&2; tail -5 "$log" >&2; }
  if [ "$server" = ejabberd ]; then
    "$EJ" stop >/dev/null 2>&1 || true
  fi
  grep -E "^(idle|chat|group-fanout) server=" "$log" | tail -1 || true
}

declare -A R
for server in tern ejabberd; do
  line=$(run idle "$server" idle --users "$IDLE_USERS" --processes "$PROCESSES" --seconds "$SECONDS_PER_RUN")
  R[$server.idle_kib]=$(field "$line" per_connection)
  R[$server.idle_conn]=$(field "$line" connected)

  line=$(run chat "$server" chat --users "$CHAT_USERS" --rate "$CHAT_RATE" --processes "$PROCESSES" --seconds "$SECONDS_PER_RUN")
  R[$server.p50]=$(field "$line" p50)
  R[$server.p99]=$(field "$line" p99)
  R[$server.cpu]=$(field "$line" cpu_s_per_1000_delivered)
  R[$server.chat_ok]="$(field "$line" delivered)/$(field "$line" sent)"

  line=$(run group "$server" group-fanout --members "$GROUP_MEMBERS" --rate "$GROUP_RATE" --messages "$GROUP_MESSAGES" --processes "$PROCESSES")
  R[$server.g50]=$(field "$line" last_member_p50)
  R[$server.g99]=$(field "$line" p99)
  R[$server.gcpu]=$(field "$line" cpu_s_per_1000_delivered)
  R[$server.g_ok]=$(grep -o "deliveries=[^ ]*" <<<"$line" | cut -d= -f2)

  best=0
  for rate in $STEP_RATES; do
    line=$(run "step$rate" "$server" chat --users "$STEP_USERS" --rate "$rate" --processes "$PROCESSES" --seconds "$SECONDS_PER_RUN")
    p99=$(field "$line" p99); sent=$(field "$line" sent); got=$(field "$line" delivered)
    echo "   $server rate=$rate p99=${p99:-?}ms delivered=${got:-?}/${sent:-?}" >&2
    ok=$(awk -v p="${p99:-1e9}" -v s="${sent:-0}" -v g="${got:-0}" -v lim="$P99_LIMIT_MS" -v min="$MIN_DELIVERED" \
      'BEGIN { print (s > 0 && p < lim && g >= min * s) ? 1 : 0 }')
    [ "$ok" = 1 ] || break
    best=$rate
  done
  R[$server.best]=$best
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
{
  echo
  echo "| figure | Tern | ejabberd | Tern / ejabberd |"
  echo "|---|---|---|---|"
  echo "| memory per idle connection, KiB ($IDLE_USERS connections; connected: ${R[tern.idle_conn]} / ${R[ejabberd.idle_conn]}) | ${R[tern.idle_kib]} | ${R[ejabberd.idle_kib]} | $(ratio "${R[tern.idle_kib]}" "${R[ejabberd.idle_kib]}") |"
  echo "| 1:1 p50, ms ($CHAT_USERS users, $CHAT_RATE msg/s) | ${R[tern.p50]} | ${R[ejabberd.p50]} | $(ratio "${R[tern.p50]}" "${R[ejabberd.p50]}") |"
  echo "| 1:1 p99, ms (same run; delivered/sent: ${R[tern.chat_ok]} / ${R[ejabberd.chat_ok]}) | ${R[tern.p99]} | ${R[ejabberd.p99]} | $(ratio "${R[tern.p99]}" "${R[ejabberd.p99]}") |"
  echo "| server CPU s per 1,000 delivered (1:1, same run) | ${R[tern.cpu]} | ${R[ejabberd.cpu]} | $(ratio "${R[tern.cpu]}" "${R[ejabberd.cpu]}") |"
  echo "| highest 1:1 rate with p99 < $P99_LIMIT_MS ms, msg/s ($STEP_USERS users; steps: $STEP_RATES) | ${R[tern.best]} | ${R[ejabberd.best]} | $(ratio "${R[tern.best]}" "${R[ejabberd.best]}") |"
  echo "| group of $GROUP_MEMBERS, last member p50, ms ($GROUP_RATE msg/s) | ${R[tern.g50]} | ${R[ejabberd.g50]} | $(ratio "${R[tern.g50]}" "${R[ejabberd.g50]}") |"
  echo "| group of $GROUP_MEMBERS, last member p99, ms (deliveries: ${R[tern.g_ok]} / ${R[ejabberd.g_ok]}) | ${R[tern.g99]} | ${R[ejabberd.g99]} | $(ratio "${R[tern.g99]}" "${R[ejabberd.g99]}") |"
  echo "| server CPU s per 1,000 delivered (group) | ${R[tern.gcpu]} | ${R[ejabberd.gcpu]} | $(ratio "${R[tern.gcpu]}" "${R[ejabberd.gcpu]}") |"
} | tee "$OUT/table.md"
