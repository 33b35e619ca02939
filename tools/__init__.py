"""The engine: no UI, no LangGraph; the agent (`goalcover.agent`) and the UIs (`goalcover.ui`) call it.

Sub-packages by role (each `__init__` names its modules and entry points):
- `core` — the workspace, settings, the SQLite store, data shapes, the goal, plans of paid steps, errors.
- `data` — a file into samples, the workspace and the Chroma index (`data.ingest.ingest_file`), and back out
  (`data.export.export`); readers, records, embeddings.
- `judge` — the LLM judge (`judge.scoring.score`, `judge.scoring.plan`), its modes, the Batch API, juries,
  and how far to trust it (`judge.judge_quality`, `judge.calibration`); every model call (`judge.llm`).
- `measure` — coverage from the judgments (`measure.coverage.coverage`), sampled estimates, the report.
- `fill` — capability gaps (`fill.gaps.find_gaps`), why a subgoal is weak (`fill.why.why`), synthetic
  samples (`fill.synthesis.synthesize`), fills from a pool of real data (`fill.pool.fill_from_pool`) and
  whether a fill closed its gap (`fill.verify.verify`).
- `history` — dataset versions and coverage snapshots (`history.versions`), the capability diff between
  two versions or workspaces (`history.diff`).
- `scale` — the same flows on a Ray cluster (`--engine ray`).
"""
