#!/usr/bin/env bash
# Install everything the suite needs (the local-model runtime included: its first build takes ~9 minutes,
# then it is cached), then run the whole suite on two workers (pytest-xdist; the Ray tests share a worker, and
# so do the browser tests: tests/conftest.py SERIAL_GROUPS), listing the 20 slowest tests. Extra arguments go
# to pytest (`-n 0`: one process).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-local.sh || exit $?
.venv/bin/python -m pytest -n 2 --dist loadgroup --durations=20 "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "test: pytest collected no tests — that is a failure here" >&2
    exit 1
fi
exit "$rc"
