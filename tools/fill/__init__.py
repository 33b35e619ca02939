"""Gaps, why, and filling them: what is weak, why, and goal-conditioned synthetic samples.

Entry points: `gaps.find_gaps`, `why.why`, `synthesis.synthesize`.

- `gaps` — the low-score explanations of weak subgoals, embedded, clustered and named.
- `why` — "why is subgoal S3 weak?", answered from computed facts; `echo` — prose that repeats its prompt
  is rejected by the grounding check.
- `synthesis` — generate, validate, de-duplicate, judge, and keep synthetic samples for review.
- `pool` — `pool add` / `pool fill`: real candidate samples kept apart from the dataset, proposed for a gap.
- `verify` — did the accepted fills close the gap, and did any other subgoal regress?
"""
