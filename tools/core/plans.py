"""The plan of every paid step — scoring, gap labelling, synthesis — computed before it runs and written
the same way wherever it is shown: the CLI's `score --dry-run`, the agent's approval question, the
terminal chat's approval panel and the web app.

A plan counts model calls and estimates tokens locally (tools/core/tokens.py); its cost is in USD from the
role's GOALCOVER_*_PRICE_PER_MTOK settings. A model without a price gets no "$0.0000": the plan says the
cost is unknown and how to make it known.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from goalcover.tools.core.settings import ModelConfig
from goalcover.tools.core.workspace import Workspace

if TYPE_CHECKING:
    from goalcover.tools.judge.judge_ref import JudgeRef

PRICE_HELP = "set GOALCOVER_INPUT_PRICE_PER_MTOK and GOALCOVER_OUTPUT_PRICE_PER_MTOK (USD per million tokens) to see it"
# Gap labelling: one call per cluster, reading the goal, the subgoal and 8 judge explanations.
LABEL_PROMPT_TOKENS = 900
LABEL_COMPLETION_TOKENS = 250
# Synthesis: one generation call per BATCH candidates (goal, gap, up to 3 style examples), then the judge.
SYNTH_PROMPT_TOKENS = 1_800
SYNTH_TOKENS_PER_SAMPLE = 300


def priced(config: ModelConfig) -> bool:
    """Whether the role has a price (both prices 0 means unknown, not free)."""
    return bool(config.input_price_per_mtok or config.output_price_per_mtok)


def cost_text(cost: float | None, known: bool, model: str = "") -> str:
    """"~$0.0123", or why the cost is unknown and how to make it known (never a bare $0.0000)."""
    if not known or cost is None:
        return f"cost unknown: no price is set for {model or 'this model'} ({PRICE_HELP})"
    return f"~${cost:.4f}"


class PaidPlan(BaseModel):
    """What a paid step will call and cost. Tokens are local estimates; `est_cost` is USD, None when a
    model it calls has no price."""

    step: Literal["scoring", "gaps", "synthesis"]
    title: str
    rows: list[tuple[str, str]] = Field(description="(what, how much) lines, in reading order")
    calls: int = Field(description="model calls at most")
    est_prompt_tokens: int
    est_completion_tokens: int
    est_cost: float | None
    cost: str = Field(description="the cost as shown: ~$X, or why it is unknown")
    free: bool = Field(False, description="nothing would be paid (everything cached)")

    def text(self) -> str:
        """One line for a terminal or a model: title, calls, tokens, cost."""
        tokens = self.est_prompt_tokens + self.est_completion_tokens
        return f"{self.title}: {self.calls:,} model calls, ~{tokens:,} tokens, {self.cost}"

    def markdown(self, question: str = "") -> str:
        """The plan as a Markdown table with the cost under it, then `question`."""
        lines = [f"**{self.title}**", "", "| | |", "|---|---:|", *[f"| {k} | {v} |" for k, v in self.rows], "",
                 f"**Estimated cost:** {self.cost}"]
        return "\n".join(lines + (["", question] if question else []))


def _tokens(prompt: int, completion: int) -> str:
    return f"~{prompt + completion:,} ({prompt:,} in, {completion:,} out)"


def scoring_plan(ws: Workspace, mode: JudgeRef | str | None = None, max_cost: float | None = None, via: str = "live",
                 sample: int | None = None) -> PaidPlan:
    """The plan of `scoring.score` with the judge `mode` (a JudgeRef, or a mode resolved with the settings,
    default GOALCOVER_JUDGE_MODE): pairs, cached pairs, calls, tokens, cost; `via="batch"` prices the calls
    at GOALCOVER_BATCH_PRICE_FACTOR times the live price; `sample` (a `--sample N` run) scales what is
    still to score by N over the samples (the first draw's expected size, before --target-width grows it).
    Raises what `scoring.plan` raises (BadInput, ConfigError)."""
    from goalcover.tools.judge import scoring

    plan, _, _ = scoring.plan(ws, mode)
    config = ws.settings.model_for("judge", need_key=False)  # the judge role's prices
    if via == "batch":
        plan.est_cost *= ws.settings.batch_price_factor
    if sample is not None:
        plan = sampled_plan(plan, sample)
    rows = [
        ("samples × subgoals", f"{plan.samples:,} × {plan.subgoals} = {plan.pairs:,} pairs"),
        ("already scored (not paid again)", f"{plan.cached:,}"),
        ("to score", f"{plan.to_score:,}"),
        ("model calls", f"{plan.calls:,} to {plan.model} ({plan.mode})"
         + (f", through the Batch API at {ws.settings.batch_price_factor:g}× the live price" if via == "batch" else "")),
        ("tokens (estimate)", _tokens(plan.est_prompt_tokens, plan.est_completion_tokens)),
    ]
    if sample is not None:
        rows.insert(0, ("stratified sample", f"{min(sample, plan.samples):,} samples drawn; coverage estimated with 95% intervals"))
    if max_cost is not None:
        rows.append(("stops before spending", f"${max_cost:g}"))
    known = priced(config)
    return PaidPlan(
        step="scoring", title=f"Score {plan.to_score:,} sample × subgoal pairs with {plan.model}", rows=rows, calls=plan.calls,
        est_prompt_tokens=plan.est_prompt_tokens, est_completion_tokens=plan.est_completion_tokens,
        est_cost=plan.est_cost if known else None, cost=cost_text(plan.est_cost, known, plan.model), free=plan.calls == 0,
    )


def sampled_plan(plan, n: int):
    """A ScorePlan scaled to a stratified sample of n of its samples: calls, pairs to score, tokens and
    cost times n / samples (what is cached stays cached; an expected value, as draws differ in length)."""
    f = min(1.0, n / plan.samples) if plan.samples else 0.0
    return plan.model_copy(update={
        "calls": round(plan.calls * f), "to_score": round(plan.to_score * f), "est_cost": plan.est_cost * f,
        "est_prompt_tokens": round(plan.est_prompt_tokens * f), "est_completion_tokens": round(plan.est_completion_tokens * f),
    })


def gaps_plan(ws: Workspace, subgoal_id: str | None = None) -> PaidPlan:
    """An upper bound for `gaps.find_gaps`: clustering is local and free; each cluster of a weak subgoal
    (and of `subgoal_id`) is named with one agent-model call, at most MAX_GAPS_PER_SUBGOAL a subgoal
    (labels of unchanged clusters are cached and cost nothing)."""
    from goalcover.tools.measure.coverage import coverage
    from goalcover.tools.fill.gaps import MAX_GAPS_PER_SUBGOAL

    report = coverage(ws)
    targets = [r.id for r in report.subgoals if r.weak or r.id == (subgoal_id or "").upper()]
    config = ws.settings.model_for("agent", need_key=False)
    calls = MAX_GAPS_PER_SUBGOAL * len(targets)
    prompt, completion = calls * LABEL_PROMPT_TOKENS, calls * LABEL_COMPLETION_TOKENS
    known = priced(config)
    cost = config.cost(prompt, completion)
    return PaidPlan(
        step="gaps", title=f"Find the gaps of {', '.join(targets) or 'no subgoal'}",
        rows=[
            ("subgoals", ", ".join(targets) or "none is weak"),
            ("clustering", "local (the judge's explanations, embedded on this machine): free"),
            ("labelling calls", f"at most {calls} to {config.model} (one per gap; cached labels are free)"),
            ("tokens (at most)", _tokens(prompt, completion)),
        ],
        calls=calls, est_prompt_tokens=prompt, est_completion_tokens=completion, est_cost=cost if known else None,
        cost=("at most " if known else "") + cost_text(cost, known, config.model), free=calls == 0,
    )


def synthesis_plan(ws: Workspace, gap_id: str, n: int) -> PaidPlan:
    """The plan of `synthesis.synthesize(ws, gap_id, n)`: ceil(n / BATCH) generation calls, then at most n
    judge calls. Raises BadInput for an unknown gap, ConfigError when a role has no model name."""
    from goalcover.tools.fill.gaps import get_gap
    from goalcover.tools.core.goal import current_goal
    from goalcover.tools.judge.scoring import EST_TOKENS_PER_VERDICT
    from goalcover.tools.fill.synthesis import BATCH

    gap = get_gap(ws, gap_id)
    goal = current_goal(ws)
    assert goal is not None
    synth, judge = ws.settings.model_for("synth", need_key=False), ws.settings.model_for("judge", need_key=False)
    generation = math.ceil(n / BATCH)
    gen_in, gen_out = generation * SYNTH_PROMPT_TOKENS, n * SYNTH_TOKENS_PER_SAMPLE
    # A judge call reads about what a generated sample is, plus the goal and rubric (~600 tokens).
    judge_in, judge_out = n * (600 + SYNTH_TOKENS_PER_SAMPLE), n * EST_TOKENS_PER_VERDICT * len(goal.subgoals)
    known = priced(synth) and priced(judge)
    cost = synth.cost(gen_in, gen_out) + judge.cost(judge_in, judge_out)
    unpriced = synth.model if not priced(synth) else judge.model
    return PaidPlan(
        step="synthesis", title=f"Write {n} samples for {gap.id} ({gap.label}, {gap.subgoal_id}) with {synth.model}",
        rows=[
            ("gap", f"{gap.id} ({gap.subgoal_id}) {gap.label}"),
            ("candidates", str(n)),
            ("generation calls", f"{generation} to {synth.model}"),
            ("judge calls", f"up to {n} to {judge.model}"),
            ("tokens (estimate)", _tokens(gen_in + judge_in, gen_out + judge_out)),
        ],
        calls=generation + n, est_prompt_tokens=gen_in + judge_in, est_completion_tokens=gen_out + judge_out,
        est_cost=cost if known else None, cost=cost_text(cost, known, unpriced),
    )
