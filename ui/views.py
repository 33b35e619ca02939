"""Views of the workspace in the chat: coverage with its charts, gaps, the "why" answer with its facts,
synthetic samples to review, exports, and where the user stands now. Every view ends with the buttons for
what can be done next (`next_actions`), computed from the workspace, so no step is a dead end.

Views read the workspace; they never change it (ui/actions.py does, through the engine).
"""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

import chainlit as cl

from goalcover.tools.core.errors import GoalCoverError
from goalcover.tools.core.workspace import Workspace
from goalcover.ui import render
from goalcover.ui.output import Out, action

MAX_WHY_BUTTONS = 3  # "Why is S3 weak?" buttons offered at once
MAX_FILL_BUTTONS = 4


async def call(fn, *args: Any, **kwargs: Any) -> Any:
    """Await an engine function: coroutines directly, blocking ones (file and index I/O) in a thread."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args, **kwargs)
    return await asyncio.to_thread(fn, *args, **kwargs)


def as_dict(value: Any) -> dict:
    """A pydantic model or a mapping as a plain dict."""
    return value.model_dump() if hasattr(value, "model_dump") else dict(value)


def fill_action(gap_id: str, label: str) -> cl.Action:
    """The button that plans synthetic samples for one gap, labelled by what it fills ("Fill G3: missing
    notice periods", the label clipped to 40 characters)."""
    shown = label if len(label) <= 40 else label[:39] + "…"
    return action("fill", f"Fill {gap_id}: {shown}", f"synthetic samples for {label}", gap_id=gap_id, gap_label=label)


# --- what can be done next ----------------------------------------------------------------------------

def _next_actions(ws: Workspace, draft: list | None, goal_text: str | None) -> list[cl.Action]:
    from goalcover.tools.judge import scoring
    from goalcover.tools.measure.coverage import JUDGE_KEY, coverage
    from goalcover.tools.fill.gaps import stored_gaps
    from goalcover.tools.core.goal import current_goal
    from goalcover.tools.fill.synthesis import list_synthetic
    from goalcover.ui import iterate_views

    if not ws.store.count_samples():
        return []
    if draft:
        return [action("approve_goal", "Approve subgoals", "save them as the goal")]
    goal = current_goal(ws, required=False)
    if goal is None:
        if goal_text:
            shown = goal_text if len(goal_text) <= 60 else goal_text[:57] + "…"
            return [action("propose", f"Propose subgoals for “{shown}”", "split this goal into checkable subgoals", goal=goal_text)]
        return []
    try:
        plan, _, _ = scoring.plan(ws, ws.settings.judge_mode)
    except GoalCoverError:  # e.g. no judge model configured: the button's plan says what to set
        plan = None
    acts: list[cl.Action] = []
    if plan is None or plan.to_score:
        resume = plan is not None and plan.cached
        acts.append(action("score", "Resume scoring" if resume else "Score the dataset", "see the plan and its cost first"))
    if ws.store.get_meta(JUDGE_KEY) is None:
        return acts
    report = coverage(ws)
    weak = [s.id for s in report.subgoals if s.weak]
    gaps = [g for g in stored_gaps(ws) if g.subgoal_id in weak] if weak else []
    acts.append(action("coverage", "Show coverage"))
    if weak and not gaps:
        acts.append(action("find_gaps", "Find gaps", "what the weak subgoals' low-scoring samples lack"))
    acts += [action("why", f"Why is {sid} weak?", subgoal_id=sid) for sid in weak[:MAX_WHY_BUTTONS]]
    acts += [fill_action(g.id, g.label) for g in gaps[:MAX_FILL_BUTTONS]]
    acts += iterate_views.pool_actions(ws, gaps[:MAX_FILL_BUTTONS])
    if not weak and not report.unscored and report.subgoals:  # nothing weak: the next useful look
        lowest = min(report.subgoals, key=lambda r: (r.share, r.mean or 0))
        acts.append(action("why", f"Look at the lowest subgoal, {lowest.id}", "its share against the others, from the scores (no model call)",
                           subgoal_id=lowest.id))
    proposed = list_synthetic(ws, state="proposed")
    if proposed:
        acts.append(action("review_list", f"Review {len(proposed)} synthetic samples"))
    acts += iterate_views.history_actions(ws)
    acts.append(action("check_judge", "Check the judge", "spot-check its scores: agree or give your own"))
    acts += [action("export", "Export dataset", "the dataset in its own format, with the accepted synthetic samples"),
             action("report", "HTML report")]
    return acts


async def next_actions(ws: Workspace, draft: list | None = None, goal_text: str | None = None, skip: tuple[str, ...] = ()) -> list[cl.Action]:
    """The buttons for every step that can be taken now (leaving out `skip`, the step just shown)."""
    acts = await asyncio.to_thread(_next_actions, ws, draft, goal_text)
    return [a for a in acts if a.name not in skip]


async def next_steps(out: Out, ws: Workspace, text: str = "What next?", **kwargs: Any) -> None:
    """Send `text` with the buttons of the next useful steps, if any."""
    acts = await next_actions(ws, **kwargs)
    if acts:
        await out.send(text, acts)


# --- the views ----------------------------------------------------------------------------------------

async def coverage_view(out: Out, ws: Workspace, intro: str = "") -> None:
    """Coverage per subgoal with its two charts, and what to do next."""
    from goalcover.tools.measure.coverage import coverage
    from goalcover.tools.measure.report import coverage_markdown, figures

    report = await call(coverage, ws)
    if not report.judge:
        await out.send(intro or "There are no scores yet.", await next_actions(ws))
        return
    bars, heat = await asyncio.to_thread(figures, report)
    text = (intro + "\n\n" if intro else "") + coverage_markdown(report)
    await out.send(
        text,
        await next_actions(ws, skip=("coverage",)),
        [cl.Plotly(name="coverage", figure=bars, display="inline", size="large"),
         cl.Plotly(name="scores", figure=heat, display="inline", size="large")],
    )


async def gaps_view(out: Out, ws: Workspace, subgoal_id: str | None = None) -> None:
    """The stored gaps (of one subgoal when `subgoal_id`), as a list and a chart, with their buttons."""
    from goalcover.tools.fill.gaps import stored_gaps
    from goalcover.ui import iterate_views

    gaps = [g for g in await call(stored_gaps, ws) if subgoal_id is None or g.subgoal_id == subgoal_id.upper()]
    if not gaps:
        await out.send(render.gaps_markdown(gaps), await next_actions(ws, skip=("find_gaps",)))
        return
    acts = [fill_action(g.id, g.label) for g in gaps]
    acts += await asyncio.to_thread(iterate_views.pool_actions, ws, gaps)
    acts += [action("why", f"Why is {sid} weak?", subgoal_id=sid) for sid in dict.fromkeys(g.subgoal_id for g in gaps)]
    await out.send(render.gaps_markdown(gaps), acts,
                   [cl.Plotly(name="gaps", figure=render.gap_figure(gaps), display="inline", size="large")])


def linkable(sample_id: str) -> bool:
    """Whether the app can link a sample id where it appears in a message: Chainlit turns the name of a
    side element into a link wherever it occurs, so a short or all-digit id would also link stray text."""
    return len(sample_id) >= 6 and not sample_id.isdigit()


async def sample_elements(ws: Workspace, ids: list[str]) -> list[cl.Text]:
    """One side-panel element per sample, named by its id: in a message that names the id, the id becomes a
    link that opens the sample beside the chat (Chainlit's element references)."""
    samples = await asyncio.to_thread(ws.store.samples, ids)
    return [cl.Text(name=s.id, display="side",
                    content=f"**{s.id}** (line {s.line})\n\n{render.sample_markdown(s.record, s.format, s.text)}")
            for s in samples]


async def weak_rule_line(ws: Workspace, subgoal_id: str) -> str:
    """The weak rule as it applies to one subgoal, with its numbers (tools/measure/weak_rule.py)."""
    from goalcover.tools.measure import weak_rule
    from goalcover.tools.measure.coverage import coverage

    report = await call(coverage, ws)
    row = next((r for r in report.subgoals if r.id == subgoal_id), None)
    if row is None:
        return ""
    if row.weak:
        return f"Weak because {weak_rule.why_weak(report, row)} — {weak_rule.rule_text(report)}."
    return f"Not weak: {weak_rule.rule_text(report)}; it has {100 * row.share:.1f}%."


async def why_view(out: Out, ws: Workspace, subgoal_id: str, answer: str, facts: Any) -> None:
    """The answer with the rule that applied and its facts; each sample id in it opens that sample in the
    side panel (ids too short to link safely get an "Open" button instead)."""
    facts = as_dict(facts)
    ids = render.why_sample_ids(facts)
    acts = [action("show_sample", f"Open {sid}", "show this sample", ids=[sid]) for sid in ids if not linkable(sid)]
    acts += [fill_action(g["id"], g["label"]) for g in facts.get("gaps", [])[:MAX_FILL_BUTTONS]]
    if not facts.get("gaps") and facts.get("coverage", {}).get("weak"):
        acts.append(action("find_gaps", "Find gaps"))
    chart = cl.Plotly(name=f"why-{subgoal_id}", figure=render.why_figure(subgoal_id, facts), display="inline", size="medium")
    text = render.why_markdown(subgoal_id, answer, facts, await weak_rule_line(ws, subgoal_id))
    await out.send(text, acts, [chart, *await sample_elements(ws, [i for i in ids if linkable(i)])])


async def samples_markdown(ws: Workspace, ids: list[str]) -> str:
    """The samples `ids` as Markdown, each under its id and line."""
    samples = await asyncio.to_thread(ws.store.samples, ids)
    return "\n\n---\n\n".join(f"**{render.inert_markdown(s.id)}** (line {s.line})\n\n{render.sample_markdown(s.record, s.format, s.text)}" for s in samples)


async def sample_view(out: Out, ws: Workspace, ids: list[str]) -> None:
    """Show the samples `ids` (or say that there are none)."""
    text = await samples_markdown(ws, ids)
    await out.send(text or f"No sample {', '.join(ids)} in this workspace.")


async def judge_check_view(out: Out, ws: Workspace, intro: str = "") -> None:
    """"Check the judge": the next judgment to spot-check (stratified by subgoal and score; the sample
    folded when long), with buttons to agree or give one's own 1-5 score, and the agreement so far."""
    from goalcover.tools.judge.calibration import agreement_now, next_for_review

    item = await asyncio.to_thread(next_for_review, ws)
    found = await asyncio.to_thread(agreement_now, ws)
    summary = agreement_markdown(found)
    lead = intro + "\n\n" if intro else ""
    if item is None:
        await out.send(lead + "Every judgment is checked. " + summary, await next_actions(ws, skip=("check_judge",)))
        return
    weighted = f" (weighted {item.weighted_score:.2f})" if item.weighted_score is not None else ""
    sample = item.folded().replace("```", "`\u200b``")  # a fence inside the sample must not close ours
    text = (
        lead
        + f"**{item.subgoal_id} {item.subgoal_title}** — {item.subgoal_description}\n\n"
        + f"Sample `{item.sample_id}`:\n\n```\n{sample}\n```\n\n"
        + f"The judge scored it **{item.score}/5**{weighted}: {item.explanation}\n\n"
        + "Do you agree? Or give your own score (1 unrelated · 2 on topic, not exercised · 3 partly · 4 clearly · 5 exemplary)."
        + (f"\n\n{summary}" if found else "")
    )
    pair = {"sample_hash": item.sample_hash, "subgoal_hash": item.subgoal_hash, "sample_id": item.sample_id,
            "subgoal_id": item.subgoal_id, "score": item.score}
    acts = [action("judge_label", f"Agree ({item.score})", **pair, user_score=None)]
    acts += [action("judge_label", str(k), f"my score: {k}", **pair, user_score=k) for k in range(1, 6)]
    acts.append(action("judge_check_done", "Done checking"))
    await out.send(text, acts)


def agreement_markdown(found: dict) -> str:
    """Agreement with the user's checks in one line per subgoal (poor ones marked); "" without labels."""
    if not found:
        return ""
    lines = ["**Agreement with your checks** (exact · within 1 · quadratic-weighted κ):"]
    for sid, a in found.items():
        kappa = "—" if a.kappa is None else f"{a.kappa:.2f}"
        if a.kappa_ci_low is not None:
            kappa += f" ({a.kappa_ci_low:.2f}–{a.kappa_ci_high:.2f})"
        poor = f" ⚠ {sid}'s scores disagree with your checks" if a.poor and sid != "overall" else ""
        lines.append(f"- {sid}: {a.exact:.0%} · {a.within_1:.0%} · κ {kappa} on {a.labels} labels{poor}")
    return "\n".join(lines)


async def synthetic_view(out: Out, ws: Workspace, gap_id: str | None = None) -> None:
    """The synthetic samples waiting for review, readable, each with accept and reject buttons."""
    from goalcover.tools.fill.synthesis import list_synthetic

    items = await call(list_synthetic, ws, gap_id.upper() if gap_id else None, "proposed")
    if not items:
        await out.send("No synthetic samples wait for review.", await next_actions(ws, skip=("review_list",)))
        return
    for item in items:
        head = f"**{item.id}** · {item.gap_id} ({item.subgoal_id}) · judge score {item.judge_score}"
        why = f"\n\n> {item.judge_explanation}" if item.judge_explanation else ""
        await out.send(
            f"{head}{why}\n\n{render.sample_markdown(item.record, item.format, item.text)}",
            [action("review", "Accept", ids=[item.id], accept=True), action("review", "Reject", ids=[item.id], accept=False)],
        )
    await out.send(
        f"{len(items)} synthetic samples wait for your review.",
        [action("review", "Accept all", ids=["all"], accept=True), action("review", "Reject all", ids=["all"], accept=False)],
    )


async def draft_view(out: Out, lines: list[str], approved: bool = False) -> cl.Message:
    """Show draft subgoals with an Approve button (or saved ones without)."""
    if approved:
        return await out.send(render.draft_markdown(lines, approved=True))
    return await out.send(render.draft_markdown(lines), [action("approve_goal", "Approve subgoals", "save them as the goal")])


async def export_view(out: Out, ws: Workspace, result: Any) -> None:
    """Show an export's result: the file (and its manifest) to download."""
    path, manifest = str(result.path), getattr(result, "manifest", None)
    files = [cl.File(name=Path(path).name, path=path, display="inline")]
    if manifest:
        files.append(cl.File(name=Path(manifest).name, path=str(manifest), display="inline"))
    await out.send(
        f"Exported **{result.written}** samples ({result.synthetic} synthetic, {result.dropped} dropped) to `{path}`. Download:",
        elements=files,
    )


async def status_view(out: Out, ws: Workspace, draft: list | None) -> None:
    """Where the user stands, recomputed from the workspace: for a reopened page, after its history."""
    from goalcover.tools.measure.coverage import JUDGE_KEY
    from goalcover.tools.data.ingest import describe
    from goalcover.tools.core.goal import current_goal
    from goalcover.tools.fill.synthesis import list_synthetic

    info = await call(describe, ws)
    goal = await asyncio.to_thread(current_goal, ws, False)
    synthetic = {state: len(await call(list_synthetic, ws, None, state)) for state in ("proposed", "accepted", "rejected")}
    exports = sorted(p.name for p in ws.exports_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    await out.send(render.status_markdown(info, goal, draft, synthetic, exports))
    if draft:
        await draft_view(out, [f"{s['id']}. {s['title']} — {s['description']}" for s in draft])
    elif goal is not None and ws.store.get_meta(JUDGE_KEY) is not None:
        from goalcover.tools.fill.gaps import stored_gaps

        if await call(stored_gaps, ws):
            await gaps_view(out, ws)
        await coverage_view(out, ws)
        return
    await next_steps(out, ws, draft=draft)
