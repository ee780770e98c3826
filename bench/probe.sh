#!/usr/bin/env bash
# What a signed send writes and waits on (SQLite): runs `api-send` for 40 s against the
# build in BIN_DIR and, from second 14, reads the server's /proc/<pid>/io and /metrics at
# the two ends of an 8 s window, then counts its system calls with `strace -c -f` for 8 s.
# Counts per message do not depend on the machine's load; speeds do.
#
#   bench/probe.sh BIN_DIR OUT_DIR      (BIN_DIR holds a release tern and tern-bench)
#
# Needs strace and curl. Leaves m1/m2/m3.txt (metrics), io1/io2.txt, strace.txt, bench.log.
set -u
bin=$(cd "$1" && pwd) out=$2
mkdir -p "$out"
work=$(mktemp -d)
cat >"$work/wrap.sh" <<WRAP
#!/usr/bin/env bash
# records the serve process's pid and exports its metrics on 127.0.0.1:9199
if [ "\$1" = serve ]; then echo \$\$ > "$work/pid"; export TERN_METRICS_ADDR=127.0.0.1:9199; fi
exec "$bin/tern" "\$@"
WRAP
chmod +x "$work/wrap.sh"
"$bin/tern-bench" --tern "$work/wrap.sh" api-send --clients 64 --seconds 40 >"$out/bench.log" 2>&1 &
bench=$!
sleep 14
pid=$(cat "$work/pid")
curl -s 127.0.0.1:9199/metrics >"$out/m1.txt"; cat "/proc/$pid/io" >"$out/io1.txt"
sleep 8
curl -s 127.0.0.1:9199/metrics >"$out/m2.txt"; cat "/proc/$pid/io" >"$out/io2.txt"
timeout -s INT 8 strace -c -f -p "$pid" -o "$out/strace.txt" >/dev/null 2>&1
curl -s 127.0.0.1:9199/metrics >"$out/m3.txt"
wait $bench
tail -n 1 "$out/bench.log"
rm -rf "$work"
