#!/usr/bin/env bash
# The chart rehearsed without Kubernetes (helm/rehearsal.py says what it does): renders
# helm/tern, runs its migration Job and 2 api, 3 gateway and 2 worker processes with the
# environment the chart gives the pods, sends a short chat load through them and stops a
# gateway as Kubernetes would. About a minute. Needs PostgreSQL at 127.0.0.1:5432 (user
# postgres; a database of its own is made and dropped) and Redis at 127.0.0.1:6379 (keys under
# a prefix of its own, removed after).
#
#   TERN_BIN=/path/to/tern bash helm/rehearsal.sh      # a release build to use
#   bash helm/rehearsal.sh                              # else: cargo build --release --bin tern
#
# Extra arguments go to rehearsal.py (--users, --seconds, --rate, --keep-logs DIR).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"

bin="${TERN_BIN:-}"
if [ -z "$bin" ]; then
  target="${CARGO_TARGET_DIR:-$HOME/.cache/tern-target}"
  echo "rehearsal: TERN_BIN not set: building tern (release) into $target"
  (cd "$root" && CARGO_TARGET_DIR="$target" cargo build --release --locked --bin tern)
  bin="$target/release/tern"
fi
[ -x "$bin" ] || { echo "rehearsal: $bin is not an executable"; exit 1; }

pg_isready -q -h 127.0.0.1 -p 5432 || { echo "rehearsal: no PostgreSQL at 127.0.0.1:5432"; exit 1; }
[ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ] || { echo "rehearsal: no Redis at 127.0.0.1:6379"; exit 1; }

tools="${TERN_HELM_TOOLS:-$HOME/.cache/tern-ci-tools-helm}"
[ -x "$tools/bin/pip" ] || python3 -m venv "$tools"
"$tools/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r "$here/requirements.txt"
exec "$tools/bin/python" "$here/rehearsal.py" --tern "$bin" "$@"
