#!/usr/bin/env bash
# Install what the tests need (system packages where missing, the project in .venv at the locked
# versions of constraints.txt) and run them all on two workers (pytest-xdist, one test file per
# worker at a time; LIVEWALL_TEST_WORKERS=0 runs them in this process), printing the 20 slowest.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/system-deps.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
if command -v npm >/dev/null 2>&1 && [ -f bench/loadgen/package-lock.json ]; then
  (cd bench/loadgen && npm ci --silent --no-audit --no-fund)
fi
exec .venv/bin/python -m pytest --durations=20 -n "${LIVEWALL_TEST_WORKERS:-2}" --dist loadfile "$@"
