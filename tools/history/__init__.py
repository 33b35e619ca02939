"""Iterative sessions: every version of the dataset keeps its coverage.

Entry points: `versions.record_version`, `versions.history`, `diff.diff`.

- `versions` — dataset versions (content hashes, compressed) and a coverage snapshot per scoring run.
- `history_store` — the tables behind them (created on first use).
- `diff` — what a change did to each subgoal and gap (Fisher's exact test), or another workspace's data.
"""
