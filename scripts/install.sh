#!/usr/bin/env bash
# Install GoalCover and its test tools into ./.venv — idempotent, safe to run on every start.
# Pins come from requirements.lock (CPU-only torch, the versions the suite was run with).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "install: GoalCover needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
    exit 2
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv

# Reinstall only when the lock or the project's metadata changed since the last install.
stamp=.venv/.goalcover-install
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -c requirements.lock -e '.[test]'
    echo "$want" > "$stamp"
fi

# The browser tests (tests/ui/test_browser.py) drive Debian's chromium through Playwright: no browser download.
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "install: /usr/bin/chromium is missing and only root can install it (apt-get install -y chromium); the browser tests will be skipped" >&2
    fi
fi
