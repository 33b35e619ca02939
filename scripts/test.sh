#!/usr/bin/env bash
# Install everything the suite needs (the local-model runtime included: its first build takes ~9 minutes,
# then it is cached), then run the whole suite on two workers (pytest-xdist; tests of one kind — llama.cpp,
# Ray, browser — share a worker: tests/conftest.py SERIAL_GROUPS). Extra arguments go to pytest (`-n 0`: one process).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-local.sh || exit $?
.venv/bin/python -m pytest -n 2 --dist loadgroup "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "test: pytest collected no tests — that is a failure here" >&2
    exit 1
fi
exit "$rc"
