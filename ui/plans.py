"""The plan of each paid step, shown before it runs: model calls, estimated tokens and cost, or why the
cost is unknown and how to make it known.

Scoring's plan is the engine's own (`scoring.plan`, the same the CLI's `--dry-run` and the agent show).
Gap labelling and synthesis use the engine's plan when it offers one (`gaps.plan`, `synthesis.plan`);
until then they are estimated here from the engine's constants and its token estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from goalcover.tools.settings import ModelConfig
from goalcover.tools.workspace import Workspace
from goalcover.ui import render

LABEL_PROMPT_TOKENS = 900  # a gap-labelling call: the goal, the subgoal and 8 judge explanations
LABEL_COMPLETION_TOKENS = 250
SYNTH_PROMPT_TOKENS = 1_800  # a generation call: goal, gap, up to 3 style examples of 1,500 characters
SYNTH_TOKENS_PER_SAMPLE = 300


@dataclass
class Plan:
    """A paid step's plan as the user sees it."""

    title: str
    rows: list[tuple[str, str]]
    cost: str  # "~$0.0123" or why it is unknown
    calls: int

    def markdown(self, question: str = "Run it?") -> str:
        return render.plan_markdown(self.title, self.rows, self.cost, question)


def priced(config: ModelConfig) -> bool:
    """Whether a price is set for the model (both prices 0 means unknown, not free)."""
    known = getattr(config, "priced", None)
    if isinstance(known, bool):
        return known
    return bool(config.input_price_per_mtok or config.output_price_per_mtok)


def _tokens(prompt: int, completion: int) -> str:
    return f"~{prompt + completion:,} ({prompt:,} in, {completion:,} out)"


def scoring_plan(ws: Workspace, mode: str = "batched") -> tuple[Plan, object]:
    """(the plan, the engine's ScorePlan)."""
    from goalcover.tools import scoring

    found = scoring.plan(ws, mode)  # type: ignore[arg-type]
    plan = found[0] if isinstance(found, tuple) else found
    config = ws.settings.model_for("judge")
    rows = [
        ("samples × subgoals", f"{plan.samples:,} × {plan.subgoals} = {plan.pairs:,} pairs"),
        ("already scored (not paid again)", f"{plan.cached:,}"),
        ("to score", f"{plan.to_score:,}"),
        ("model calls", f"{plan.calls:,} to {plan.model} ({plan.mode})"),
        ("tokens (estimate)", _tokens(plan.est_prompt_tokens, plan.est_completion_tokens)),
    ]
    return Plan("Scoring plan", rows, render.cost_text(plan.est_cost, priced(config), plan.model), plan.calls), plan


def gaps_plan(ws: Workspace, weak: list[str]) -> Plan:
    """Labelling the gaps of the weak subgoals: at most a few calls per weak subgoal (labels of unchanged
    clusters are cached and cost nothing again)."""
    from goalcover.tools import gaps

    config = ws.settings.model_for("agent")
    engine_plan = getattr(gaps, "plan", None)
    if engine_plan is not None:
        p = engine_plan(ws)
        p = p.model_dump() if hasattr(p, "model_dump") else dict(p)
        calls = int(p.get("calls", 0))
        rows = [("weak subgoals", ", ".join(weak) or "none"), ("labelling calls", f"{calls} to {config.model}")]
        if "est_prompt_tokens" in p:
            rows.append(("tokens (estimate)", _tokens(p["est_prompt_tokens"], p.get("est_completion_tokens", 0))))
        return Plan("Gap analysis plan", rows, render.cost_text(p.get("est_cost"), priced(config), config.model), calls)
    calls = gaps.MAX_GAPS_PER_SUBGOAL * len(weak)
    prompt, completion = calls * LABEL_PROMPT_TOKENS, calls * LABEL_COMPLETION_TOKENS
    rows = [
        ("weak subgoals", ", ".join(weak) or "none"),
        ("clustering", "local (the judge's explanations, embedded on this machine): free"),
        ("labelling calls", f"at most {calls} to {config.model} (one per gap; cached labels are free)"),
        ("tokens (at most)", _tokens(prompt, completion)),
    ]
    cost = render.cost_text(config.cost(prompt, completion), priced(config), config.model)
    return Plan("Gap analysis plan", rows, ("at most " + cost) if priced(config) else cost, calls)


def synthesis_plan(ws: Workspace, gap_id: str, n: int, per_judge_call: int) -> Plan:
    """Generating `n` candidates for a gap and judging each; `per_judge_call` is the estimated prompt
    tokens of one judge call (from scoring's plan)."""
    from goalcover.tools import synthesis
    from goalcover.tools.gaps import get_gap

    gap = get_gap(ws, gap_id)
    synth, judge = ws.settings.model_for("synth"), ws.settings.model_for("judge")
    generation = math.ceil(n / synthesis.BATCH)
    gen_in, gen_out = generation * SYNTH_PROMPT_TOKENS, n * SYNTH_TOKENS_PER_SAMPLE
    judge_in, judge_out = n * per_judge_call, n * 60 * max(1, len(_subgoal_ids(ws)))
    rows = [
        ("gap", f"{gap.id} ({gap.subgoal_id}) {gap.label}"),
        ("candidates", str(n)),
        ("generation calls", f"{generation} to {synth.model}"),
        ("judge calls", f"up to {n} to {judge.model}"),
        ("tokens (estimate)", _tokens(gen_in + judge_in, gen_out + judge_out)),
    ]
    if priced(synth) and priced(judge):
        cost = render.cost_text(synth.cost(gen_in, gen_out) + judge.cost(judge_in, judge_out), True)
    else:
        unknown = synth if not priced(synth) else judge
        cost = render.cost_text(None, False, unknown.model)
    return Plan(f"Synthesis plan for {gap.id}", rows, cost, generation + n)


def _subgoal_ids(ws: Workspace) -> list[str]:
    from goalcover.tools.goal import current_goal

    goal = current_goal(ws, required=False)
    return [] if goal is None else [s.id for s in goal.subgoals]
