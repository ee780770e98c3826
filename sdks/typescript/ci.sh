#!/usr/bin/env bash
# The TypeScript SDK's whole check, run by .ci/test: install from the lockfile, check that
# the generated code matches platform/proto and docs/openapi.json (and the golden frames
# docs/protocol-frames.json), type-check, build, then every test — signing vectors, golden
# frames, the server client and the real-time client against a real `tern serve`, and the
# web chat in headless Chromium.
#
# The tern binary: $TERN_BIN, else ${CARGO_TARGET_DIR:-target}/debug/tern, brought up to
# date by `cargo build -p tern --bin tern`. Chromium: $CHROMIUM_PATH or /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")"
repo="$(cd ../.. && pwd)"

if [ -z "${TERN_BIN:-}" ]; then
  bin="${CARGO_TARGET_DIR:-$repo/target}/debug/tern"
  case "$bin" in /*) ;; *) bin="$repo/$bin" ;; esac
  # Always: a no-op when it is up to date, and never a stale binary from an older build.
  (cd "$repo" && cargo build -p tern --bin tern)
  export TERN_BIN="$bin"
fi

npm ci --no-audit --no-fund --loglevel=error
node scripts/generate.mjs --check
npx tsc -p tsconfig.test.json
node scripts/build.mjs
node scripts/golden-frames.mjs --check
# No Node built-in may reach the browser bundle.
if grep -Eq '"(node:|ws"|fs"|crypto")' dist/browser/tern.min.js dist/esm/index.js; then
  echo "the browser build imports a Node module" >&2
  exit 1
fi
# The CJS and ESM entries load in Node.
node -e 'const c = require("./dist/cjs/index.node.cjs"); const s = require("./dist/cjs/server.cjs"); if (typeof c.Client !== "function" || typeof s.ServerClient !== "function") process.exit(1)'
node --input-type=module -e 'const c = await import("./dist/esm/index.node.js"); const s = await import("./dist/esm/server.js"); if (typeof c.Client !== "function" || typeof s.verifyWebhook !== "function") process.exit(1)'
npx vitest run
