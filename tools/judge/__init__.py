"""The judge: every model call that scores samples against subgoals, and how far to trust it.

Entry points: `scoring.score` (run the judge, resumable), `scoring.plan` (its cost before it runs),
`judge_quality.judge_quality` (trust figures), `calibration.to_review` / `calibration.save_label` (the
user's spot-checks).

- `judge_ref` — `JudgeRef`, the judge's identity (model, base URL, prompt version, mode, jurors): resolved
  once from the settings then the CLI's or app's arguments, passed to every step; stored rows read back.
- `llm` — every model call: ChatOpenAI, rate limits, usage and cost, JSON that survives real models.
- `prompts` — the engine's versioned prompts.
- `scoring` — the judge over samples x subgoals (batched / pair / probe modes), cached by prompt version:
  `plan`, and `score` as a few named steps (plan and record the run, judge all, count).
- `calls` — one judge call: the fitted sample text, each mode's prompt, reply schema and bounds, the request
  body the Batch API and Ray engines send, and the store rows a reply becomes.
- `fit`, `fit_store` — long samples cut to the judge's context window (whole response and instruction kept),
  and the tags that re-judge only the samples whose prompt a cut changed.
- `probe` — probe mode: one yes/no token per pair, P(yes) as the score.
- `geval` — probability-weighted scores from token logprobs (G-Eval).
- `batch` — `score --via batch`: the OpenAI Batch API.
- `jury` — several judge models; consensus and agreement.
- `calibration`, `judge_quality`, `order_check` — spot-checks, agreement, length bias, order effects.
- `local` — finding or starting a local OpenAI-compatible server (llama.cpp).
"""
