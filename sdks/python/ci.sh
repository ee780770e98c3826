#!/usr/bin/env bash
# The Python SDK's checks, run by .ci/test: a venv with the hash-pinned tools of
# requirements-dev.txt, the generated clients up to date, mypy --strict, an offline wheel
# build, then pytest against that installed wheel and a real `tern serve`.
#
# The server binary: $TERN_BIN when set, else tests/conftest.py runs
# `cargo build -p tern --bin tern` (a no-op after nextest) and uses
# ${CARGO_TARGET_DIR:-target}/debug/tern. The venv: $TERN_PY_VENV, default
# ~/.cache/tern-ci-tools-py. Extra arguments go to pytest (`bash ci.sh -k webhook`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

python=""
for candidate in python3.11 python3.12 python3.13 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
    "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python="$candidate"
    break
  fi
done
[ -n "$python" ] || { echo "sdks/python/ci.sh: needs Python 3.11 or newer" >&2; exit 1; }

venv="${TERN_PY_VENV:-$HOME/.cache/tern-ci-tools-py}"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
  -r requirements-dev.txt

echo "== python sdk: generated clients up to date"
"$venv/bin/python" scripts/generate_clients.py --check

echo "== python sdk: mypy --strict"
"$venv/bin/mypy" --strict

echo "== python sdk: wheel (offline, no build isolation)"
dist="$(mktemp -d)"
trap 'rm -rf "$dist"' EXIT
"$venv/bin/python" -m pip wheel --quiet --disable-pip-version-check --no-index \
  --no-build-isolation --no-deps -w "$dist" .
wheel="$(ls "$dist"/tern_sdk-*-py3-none-any.whl)"
"$venv/bin/python" - "$wheel" <<'PY'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
missing = {"tern/__init__.py", "tern/py.typed", "tern/client.py", "tern/async_client.py"} - names
assert not missing, f"the wheel lacks {missing}"
print(f"{sys.argv[1].rsplit('/', 1)[-1]}: {len(names)} files")
PY
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index --no-deps \
  --force-reinstall "$wheel"

echo "== python sdk: pytest (the installed wheel, a real tern serve)"
# Run from tests/ so that `import tern` finds the installed wheel, not src/.
cd tests
"$venv/bin/python" -m pytest -q -p no:cacheprovider --rootdir="$here" -c "$here/pyproject.toml" "$@" .
