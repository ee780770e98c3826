#!/usr/bin/env bash
# The chart and the image, checked offline in well under a minute: Helm's engine (PyPI
# helm-python-sdk) renders helm/tern with every values file in helm/tests/values and lints
# it, kubernetes-validate --strict checks every manifest against Kubernetes 1.30 and 1.37,
# hadolint checks the Dockerfile, promtool checks and unit-tests the alerts, and pytest
# asserts what an operator relies on.
# Tools come from helm/requirements.txt (hash-pinned) into a venv of their own.
# The rehearsal with real processes is helm/rehearsal.sh (needs PostgreSQL and Redis).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tools="${TERN_HELM_TOOLS:-$HOME/.cache/tern-ci-tools-helm}"
[ -x "$tools/bin/pip" ] || python3 -m venv "$tools"
"$tools/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r "$here/requirements.txt"
# promtool (checks and unit-tests the alert rules): taken out of Debian's prometheus package
# without installing it, so no Prometheus service is set up on the machine.
promtool="$tools/promtool/usr/bin/promtool"
if [ ! -x "$promtool" ]; then
  deb="$(mktemp -d)"
  (cd "$deb" && { apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download prometheus; }; })
  dpkg -x "$deb"/prometheus_*.deb "$tools/promtool"
  rm -rf "$deb"
fi
export TERN_PROMTOOL="$promtool"
cd "$here/.."
exec "$tools/bin/python" -m pytest helm/tests -q -p no:cacheprovider
