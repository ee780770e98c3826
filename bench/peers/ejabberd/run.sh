#!/usr/bin/env bash
# Runs a private ejabberd node for Tern's side-by-side benchmark (bench/peers/README.md):
# its own config dir, spool (Mnesia) dir, log dir, node name and loopback port (5480,
# WebSocket at /ws), never the system service's.
#
#   bench/peers/ejabberd/run.sh start    # install if missing, start, wait until up
#   bench/peers/ejabberd/run.sh pid      # the OS pid of its beam.smp (for RSS and CPU)
#   bench/peers/ejabberd/run.sh stop     # stop it and remove its spool dir
#   bench/peers/ejabberd/run.sh status
#
# EJ_DIR (default /tmp/tern-peer-ejabberd) holds everything the node writes.
# EJABBERD_NO_BUSY_WAIT=1 adds Erlang's `+sbwt none` (schedulers do not spin when idle).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
EJ_DIR="${EJ_DIR:-/tmp/tern-peer-ejabberd}"
NODE="tern-peer@localhost"
export EJABBERD_PID_PATH="$EJ_DIR/ejabberd.pid"

# As the package's `ejabberd` user, but not through `su` (which ejabberdctl uses when run
# as root): su's PAM session resets the open-files limit to 1,024, too few for 10,000
# connections. setpriv keeps this shell's limits, raised to the hard limit first.
ctl() {
  ulimit -n "$(ulimit -Hn)"
  (cd "$EJ_DIR" && HOME=/var/lib/ejabberd setpriv --reuid ejabberd --regid ejabberd --init-groups \
    ejabberdctl --config-dir "$EJ_DIR/etc" --config "$EJ_DIR/etc/ejabberd.yml" \
    --ctl-config "$EJ_DIR/etc/ejabberdctl.cfg" --spool "$EJ_DIR/spool" \
    --logs "$EJ_DIR/log" --node "$NODE" "$@")
}

install() {
  if ! command -v ejabberdctl >/dev/null 2>&1; then
    echo "installing Debian's ejabberd" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y ejabberd >&2
  fi
  # The package enables and may start its own service (port 5222, node ejabberd@localhost):
  # the benchmark needs the machine to itself, so stop and disable it.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    systemctl disable --now ejabberd >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/ejabberd ]; then
    /etc/init.d/ejabberd stop >/dev/null 2>&1 || true
  fi
}

case "${1:-}" in
  start)
    install
    if [ -f "$EJABBERD_PID_PATH" ] && kill -0 "$(cat "$EJABBERD_PID_PATH")" 2>/dev/null; then
      echo "already running: pid $(cat "$EJABBERD_PID_PATH")" >&2
      exit 0
    fi
    rm -rf "$EJ_DIR/spool" "$EJ_DIR/log"
    mkdir -p "$EJ_DIR/etc" "$EJ_DIR/spool" "$EJ_DIR/log"
    cp "$HERE/ejabberd.yml" "$EJ_DIR/etc/ejabberd.yml"
    cp "$HERE/ejabberdctl.cfg" "$EJ_DIR/etc/ejabberdctl.cfg"
    if [ "${EJABBERD_NO_BUSY_WAIT:-0}" = 1 ]; then
      echo 'ERL_OPTIONS="$ERL_OPTIONS +sbwt none +sbwtdcpu none +sbwtdio none"' >>"$EJ_DIR/etc/ejabberdctl.cfg"
    fi
    # Erlang's resolver reads this file; empty means the system's settings.
    touch "$EJ_DIR/etc/inetrc"
    chown -R ejabberd:ejabberd "$EJ_DIR"
    ctl start
    up=0
    for _ in $(seq 1 60); do
      if ctl status >/dev/null 2>&1; then up=1; break; fi
      sleep 1
    done
    if [ "$up" != 1 ] || ! [ -s "$EJABBERD_PID_PATH" ]; then
      echo "ejabberd did not start; its log says:" >&2
      tail -5 "$EJ_DIR/log/ejabberd.log" >&2
      exit 1
    fi
    echo "ejabberd up: ws://127.0.0.1:5480/ws pid $(cat "$EJABBERD_PID_PATH")" >&2
    ;;
  pid)
    cat "$EJABBERD_PID_PATH"
    ;;
  status)
    ctl status
    ;;
  stop)
    if [ -f "$EJABBERD_PID_PATH" ]; then
      ctl stop || true
      ctl stopped || true
    fi
    rm -rf "$EJ_DIR/spool" "$EJABBERD_PID_PATH"
    ;;
  *)
    echo "usage: $0 start|stop|status|pid" >&2
    exit 2
    ;;
esac
