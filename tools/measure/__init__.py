"""Coverage and estimates: how many samples really teach each subgoal, and the report.

Entry points: `coverage.coverage` (a `CoverageReport` from the stored judgments), `sampled.score_sampled`
(`score --sample/--budget/--target-width`), `report.render` (Markdown, JSON, HTML).

- `coverage` — per-subgoal coverage from the judgments.
- `estimate` — a stratified sample's intervals (share, mean score, probability of being weak).
- `strata` — strata from source files and embedding clusters, and a stratified random draw.
- `sampled` — estimate first: score a stratified sample, grow it until intervals are narrow enough.
- `report` — the coverage report as Markdown, JSON or one self-contained HTML file.
- `partial` — coverage of a partly scored dataset as an estimate over the scored samples (nothing weak until
  the interval says so); `weak_rule` — the rule that made a subgoal weak, stated with its numbers.
- `predict`, `predict_store`, `ppi` — `score --predict`: per-subgoal predictors on the stored embeddings
  and the texts' words (`features`), prediction-powered (PPI++) intervals and the judge cascade.
"""
