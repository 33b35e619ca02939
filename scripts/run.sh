#!/usr/bin/env bash
# Install GoalCover, then run the main job: ingest a shared dataset into a workspace and print its summary.
# Extra arguments replace the dataset file, e.g. scripts/run.sh my_data.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
data=${1:-../shared/datasets/sft/contracts_alpaca.jsonl}
.venv/bin/goalcover ingest "$data"
.venv/bin/goalcover search "termination of the user's account" -k 5
