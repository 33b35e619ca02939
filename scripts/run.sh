#!/usr/bin/env bash
# Install GoalCover, then run the main job: the chat app (Chainlit) on the embedded defaults, at
# http://127.0.0.1:8000. Point it at a model first (see README: GOALCOVER_MODEL + OPENAI_API_KEY or
# OPENAI_BASE_URL, or a local llama.cpp server). Extra arguments go to `goalcover ui`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/goalcover ui "$@"
