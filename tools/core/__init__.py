"""The workspace core: what every flow reads and writes.

- `workspace` — `Workspace.open(path)`: one folder (`goalcover.sqlite`, `chroma/`, `exports/`) and its settings.
- `settings` — `Settings`: every `GOALCOVER_*` knob, from the environment (pydantic-settings).
- `store` — `Store`: the workspace's SQLite file (samples, goal, judgments, gaps, runs, meta).
- `shapes` — the pydantic data shapes that cross module boundaries (`Sample`, `Subgoal`, `Judgment`, ...).
- `goal` — the goal and its subgoals: `load_goal_file`, or `propose_subgoals` by the agent model.
- `plans` — the plan (calls, tokens, cost) of every paid step, shown the same way everywhere.
- `errors` — `GoalCoverError`, `BadInput`, ...: the errors the engine raises on purpose.
- `files`, `tokens` — small helpers: `write_atomic`; the one local token estimate.
- `untrusted` — `untrusted(text)`: neutralises data for every prompt it enters (no data block closed early).
- `lock`, `failures` — one writer per workspace (`writing`, `@writes`); full disks and busy databases as
  clear errors.
"""
