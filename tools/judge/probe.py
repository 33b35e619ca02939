"""Probe mode: the judge answers one constrained yes/no token per sample × subgoal, and the probability
it puts on "yes" is the score.

Why: a small local model writes ~1 token/s with logprobs on 2 cores, so a verdict with an explanation
(~60 tokens) costs a minute per pair, while reading the prompt is comparatively cheap. A probe writes one
token. The question for a subgoal comes after the sample (PROBE_USER), so the calls for one sample share
their prefix up to the sample's end and a server with prefix caching (llama.cpp, vLLM, OpenAI) reads the
sample once for all its subgoals; iter_tasks yields a sample's pairs one after the other.

Score. P(yes) = p(yes) / (p(yes) + p(no)) over the first token's top logprobs (tokens compared
case- and space-insensitively). GOALCOVER_PROBE_THRESHOLDS holds four P(yes) cut points t1 < t2 < t3 < t4:
the 1-5 verdict is 1 plus the cut points P(yes) reaches, and the stored weighted score runs linearly
through (0, 1), (t1, 1.5), (t2, 2.5), (t3, 3.5), (t4, 4.5), (1, 5), so GOALCOVER_SUPPORT_WEIGHTED 3.5
means P(yes) >= t3. The default 0.125/0.375/0.625/0.875 makes it 1 + 4·P(yes). A small model's P(yes)
is compressed (Qwen2.5-Coder-1.5B put 0.23-0.54 on the judge_separation pairs), so its cut points must be
calibrated: evals/probe_calibration.py fits them; evals/README.md ("The local judge, measured") has the
values measured here.
A server that returns no logprobs gives P(yes) 1 or 0 from the answer itself.

Explanations are written only when something reads them: `explain_low` asks for one, for the low-scored
pairs of the subgoals gap analysis clusters (at most GOALCOVER_PROBE_EXPLAIN_MAX per subgoal), and stores
it in the judgment row. Until then a probe judgment's explanation is "".
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field

from goalcover.tools.core.errors import BadInput
from goalcover.tools.judge.fit import fit_budget, fit_sample
from goalcover.tools.judge.llm import BulkJsonCaller, JsonCaller, Usage, message_dicts
from goalcover.tools.core.shapes import Goal, Sample, Subgoal

if TYPE_CHECKING:
    from goalcover.tools.judge.judge_ref import JudgeRef
from goalcover.tools.judge.prompts import (
    PROBE_EXPLAIN_SYSTEM, PROBE_EXPLAIN_VERSION, PROBE_SYSTEM, PROBE_USER, format_subgoals, neutralise,
)
from goalcover.tools.core.tokens import estimate_tokens

PROBE_TOP_LOGPROBS = 20
EXPLAIN_MAX_TOKENS = 200  # an explanation is one or two sentences
YES, NO = "yes", "no"


def probe_messages(goal: Goal, subgoal: Subgoal, sample: Sample, text: str) -> list:
    """System (the goal and the yes/no instruction, shared by every call), then the sample as `text` (its
    fitted text: scoring.judge_text), then the one subgoal's question (langchain messages)."""
    from langchain_core.messages import HumanMessage, SystemMessage

    user = PROBE_USER.format(sample_id=neutralise(sample.id, attribute=True), text=neutralise(text), subgoal=format_subgoals([subgoal]))
    return [SystemMessage(PROBE_SYSTEM.format(goal=goal.text)), HumanMessage(user)]


def explain_messages(goal: Goal, subgoal: Subgoal, sample: Sample, p: float, context_tokens: int) -> list:
    """The explanation call of one low pair (explain_low): the goal, the subgoal and P(yes) `p`, then the
    sample fitted to a `context_tokens` window (tools/judge/fit.py: the whole response and instruction, the
    context cut in its middle). Raises BadInput when the window cannot hold the prompt."""
    from langchain_core.messages import HumanMessage, SystemMessage

    from goalcover.tools.judge.prompts import JUDGE_USER

    system = PROBE_EXPLAIN_SYSTEM.format(goal=goal.text, subgoal=format_subgoals([subgoal]), p_yes=p)
    frame = estimate_tokens(system) + estimate_tokens(JUDGE_USER.format(sample_id=sample.id, text=""))
    try:
        budget = fit_budget(context_tokens, frame, EXPLAIN_MAX_TOKENS)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    text = fit_sample(sample, budget).text
    return [SystemMessage(system), HumanMessage(JUDGE_USER.format(sample_id=neutralise(sample.id, attribute=True), text=neutralise(text)))]


def probe_body(model: str, messages: list, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `/v1/chat/completions` body of one probe: one output token, greedy, top logprobs, plus
    `extra` (GOALCOVER_PROBE_EXTRA_BODY: e.g. llama.cpp's {"grammar": "root ::= \\"yes\\" | \\"no\\""} or
    vLLM's {"guided_choice": ["yes", "no"]} to constrain the token)."""
    return {"model": model, "messages": message_dicts(messages), "max_tokens": 1, "temperature": 0,
            "logprobs": True, "top_logprobs": PROBE_TOP_LOGPROBS, **(extra or {})}


def p_yes(content: str, logprobs: list[dict] | None) -> float | None:
    """P(yes) from the first generated token's alternatives (renormalised over yes/no); from the answer
    alone (1.0 or 0.0) when there are no logprobs; None when neither says yes or no."""
    if logprobs:
        mass = {YES: 0.0, NO: 0.0}
        first = logprobs[0]
        for alt in first.get("top_logprobs") or [{"token": first.get("token", ""), "logprob": first.get("logprob")}]:
            word = str(alt.get("token", "")).strip().lower()
            if word in mass and alt.get("logprob") is not None:
                mass[word] += math.exp(float(alt["logprob"]))
        total = mass[YES] + mass[NO]
        if total > 0:
            return mass[YES] / total
    word = content.strip().lower().rstrip(".")
    return 1.0 if word == YES else 0.0 if word == NO else None


# P(yes) cut points fitted for local models by evals/probe_calibration.py on their judge_separation probe
# runs (and checked on their corruption runs; figures in evals/README.md), keyed by a name the served
# model id contains.
CALIBRATED_CUTS: dict[str, tuple[float, float, float, float]] = {
    "qwen2.5-coder-1.5b-instruct-q4_k_m": (0.3235, 0.3285, 0.3414, 0.3916),
}


def calibrated_cuts(model: str) -> tuple[float, float, float, float] | None:
    """The fitted cut points of a local model this project has calibrated (matched by a name its id or
    file name contains, case-insensitively), else None."""
    name = model.lower()
    return next((cuts for key, cuts in CALIBRATED_CUTS.items() if key in name), None)


_GRADES = (1.0, 1.5, 2.5, 3.5, 4.5, 5.0)  # the weighted score at P(yes) = 0, the four cut points, 1


def weighted_from_p(p: float, thresholds: tuple[float, ...] | list[float]) -> float:
    """The weighted 1-5 score of P(yes) = p: piecewise linear through (0, 1), (t1, 1.5), (t2, 2.5),
    (t3, 3.5), (t4, 4.5), (1, 5), so that a cut point is where the rounded verdict changes and
    "weighted >= 3.5" (GOALCOVER_SUPPORT_WEIGHTED) means p >= t3. At the default cut points
    (0.125, 0.375, 0.625, 0.875) this is 1 + 4p."""
    return round(float(np.interp(p, (0.0, *thresholds, 1.0), _GRADES)), 4)


def p_from_weighted(weighted: float, thresholds: tuple[float, ...] | list[float]) -> float:
    """P(yes) back from a weighted score stored under the same cut points (the inverse of weighted_from_p)."""
    return float(np.interp(weighted, _GRADES, (0.0, *thresholds, 1.0)))


def to_verdict(p: float, thresholds: tuple[float, ...] | list[float]) -> tuple[int, float]:
    """(1-5 verdict, weighted score) for P(yes) = p: the verdict is 1 plus the cut points p reaches; the
    weighted score is weighted_from_p (so the verdict is the weighted score rounded half up)."""
    return 1 + sum(p >= t for t in thresholds), weighted_from_p(p, thresholds)


async def probe_call(caller: BulkJsonCaller, body: dict[str, Any]) -> tuple[str, list[dict] | None, Usage, str | None]:
    """Post one probe through `caller.post_body` (the client-side rate limits and the retries of
    transient faults every call has). Returns (content, logprobs of the content, usage, error or None):
    a call that still fails after its retries is an error here, not an exception."""
    usage = Usage()
    try:
        reply = await caller.post_body(body, usage)
    except Exception as exc:  # noqa: BLE001 — recorded as the pair's failure by the caller
        return "", None, usage, f"{type(exc).__name__}: {exc}"[:300]
    return reply.content, reply.logprobs, usage, None


class _Explanation(BaseModel):
    explanation: str = Field(min_length=1, description="what the sample shows and what it lacks for this subgoal")


async def explain_low(ws, subgoals: list[Subgoal], judge: JudgeRef | dict | None) -> int:
    """Write the missing explanations of the low-scored probe judgments (score below the support
    threshold) of `subgoals`, at most GOALCOVER_PROBE_EXPLAIN_MAX per subgoal (in sample-hash order: a fixed
    pseudo-random subset), one structured call to the judge model each. Stores them in the judgment rows
    and returns how many were written. `judge` is a JudgeRef (a stored judge dict is read with
    JudgeRef.from_stored). A no-op for judges that are not in probe mode."""
    from goalcover.tools.core.goal import current_goal
    from goalcover.tools.judge.judge_ref import JudgeRef

    judge = JudgeRef.from_stored(judge) if isinstance(judge, dict) else judge
    if judge is None or judge.mode != "probe":
        return 0
    goal = current_goal(ws)
    assert goal is not None
    settings = ws.settings
    version, model = judge.key
    todo: list[tuple[Subgoal, str, str, float]] = []
    for g in subgoals:
        rows = ws.store.unexplained_low(version, model, g.hash, settings.support_threshold, settings.probe_explain_max)
        todo += [(g, sample_hash, sample_id, p_from_weighted(weighted, settings.probe_thresholds) if weighted is not None else 0.0)
                 for sample_hash, sample_id, weighted in rows]
    if not todo:
        return 0
    samples = {s.id: s for s in ws.store.samples([sid for _, _, sid, _ in todo])}
    gate = asyncio.Semaphore(settings.concurrency)
    written = 0
    # The model that judged writes the explanations (a jury's: the configured judge).
    config = settings.model_for("judge") if judge.jurors else judge.endpoint(settings)
    async with JsonCaller(config, settings) as caller:
        async def one(g: Subgoal, sample_hash: str, sample_id: str, p: float) -> None:
            nonlocal written
            messages = explain_messages(goal, g, samples[sample_id], p, settings.judge_context_tokens)
            async with gate:
                result = await caller.call(messages, _Explanation, name="explanation", max_tokens=EXPLAIN_MAX_TOKENS)
            if result.value is not None:
                ws.store.set_explanation(sample_hash, g.hash, version, model, result.value.explanation)
                written += 1

        await asyncio.gather(*(one(*item) for item in todo))
    return written


__all__ = ["CALIBRATED_CUTS", "PROBE_EXPLAIN_VERSION", "calibrated_cuts", "explain_low", "explain_messages", "p_from_weighted", "p_yes", "probe_body", "probe_call", "probe_messages",
           "to_verdict", "weighted_from_p"]
