#!/usr/bin/env bash
# The console's browser tour (tests/browser/tour.mjs) against a real `tern serve` on a
# random port, in headless Chromium. Needs node/npm and /usr/bin/chromium (.ci/run installs
# them); screenshots land in a temporary directory, or in docs/console/ with
# UPDATE_SCREENSHOTS=1. Run from anywhere. APNs points at a closed local port: the tour's
# test push must show that the provider was not reached. Webhooks may reach private
# addresses: the tour's webhook endpoint is a local server of its own. Alert rules are checked
# every second, so the tour sees its alert raised without waiting a minute.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"

[ -d "$here/node_modules/playwright-core" ] || (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
# The tern that .ci/test's workspace build made (TERN_BIN), else a build of our own.
if [ -n "${TERN_BIN:-}" ]; then
  bin="$TERN_BIN"
else
  (cd "$root" && cargo build -p tern --quiet)
  bin="${CARGO_TARGET_DIR:-$root/target}/debug/tern"
fi

data="$(mktemp -d)"
log="$data/serve.log"
email="ops@example.com"
password="tour-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
env -u TERN_DATABASE_URL -u TERN_REDIS_URL -u TERN_CONFIG \
  TERN_HTTP_ADDR=127.0.0.1:0 TERN_GRPC_ADDR=127.0.0.1:0 TERN_DATA_DIR="$data/data" \
  TERN_ADMIN_EMAIL="$email" TERN_ADMIN_PASSWORD="$password" TERN_LOG=warn TERN_WEBHOOK_ALLOW_PRIVATE=1 TERN_ALERT_INTERVAL_SECONDS=1 \
  TERN_PUSH_APNS_URL=http://127.0.0.1:1 TERN_PUSH_APNS_SANDBOX_URL=http://127.0.0.1:1 \
  "$bin" serve >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$data"' EXIT

for _ in $(seq 1 300); do
  grep -q "tern: ready" "$log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "tern serve exited"; exit 1; }
  sleep 0.2
done
grep -q "tern: ready" "$log" || { cat "$log"; echo "tern serve never became ready"; exit 1; }
base="$(sed -n 's/^  http: *//p' "$log" | head -n1)"

cd "$here"
node tests/browser/tour.mjs "$base" "$email" "$password"
