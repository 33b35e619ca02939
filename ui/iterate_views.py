"""The chat app's views of iterative gap-filling: the coverage timeline, "What changed?", filling a gap from the
pool, the verification after an accept, and the "since last time" summary on resume.

Kept apart from views.py and actions.py; they call in here through small hooks (buttons, next actions).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import chainlit as cl

from goalcover.ui.output import action
from goalcover.ui.views import call

if TYPE_CHECKING:
    from goalcover.tools.core.workspace import Workspace
    from goalcover.ui.output import Out

POOL_FILL_N = 20  # pool samples judged by the "Fill from the pool" button


# --- buttons offered among the next actions ---------------------------------------------------------

def history_actions(ws: "Workspace") -> list[cl.Action]:
    """"Coverage over time" and "What changed?" once the dataset has two versions or more (sync: the
    caller runs in a worker thread; reads two rows, records nothing)."""
    from goalcover.tools.history import history_store as hs

    if len(hs.version_rows(ws.store, limit=2)) < 2:
        return []
    return [action("timeline", "Coverage over time", "share per subgoal across dataset versions"),
            action("what_changed", "What changed?", "the last change of the dataset, subgoal by subgoal")]


def pool_actions(ws: "Workspace", gaps: list) -> list[cl.Action]:
    """A "Fill G1 from the pool" button beside each "Fill G1" when the pool holds samples (sync)."""
    from goalcover.tools.fill.pool import _db

    if not gaps or not _db(ws.store).execute("SELECT COUNT(*) FROM pool_samples").fetchone()[0]:
        return []
    return [action("pool_fill", f"Fill {g.id} from the pool", f"real samples from your pool for {g.label}", gap_id=g.id)
            for g in gaps]


# --- figures ------------------------------------------------------------------------------------------

def timeline_figure(history) -> Any:
    """Plotly lines: share (%) per subgoal over the versions, weak points marked."""
    import plotly.graph_objects as go

    fig = go.Figure()
    names = [f"v{v.id}" for v in history.versions]
    ids = [r.id for r in history.versions[-1].coverage] if history.versions else []
    for sid in ids:
        rows = [next((r for r in v.coverage if r.id == sid), None) for v in history.versions]
        fig.add_trace(go.Scatter(
            x=names, y=[None if r is None else round(100 * r.share, 1) for r in rows], mode="lines+markers", name=sid,
            marker={"symbol": ["x" if r is not None and r.weak else "circle" for r in rows], "size": 9},
        ))
    fig.update_layout(title="Coverage over time (share of samples supporting each subgoal; x = weak)",
                      yaxis_title="% of samples", xaxis_title="dataset version", height=360, margin={"t": 50, "b": 40})
    return fig


def diff_figure(found) -> Any:
    """Plotly bars: each subgoal's share before and after, significant changes named in the title."""
    import plotly.graph_objects as go

    ids = [d.id for d in found.subgoals]
    fig = go.Figure([
        go.Bar(name=found.from_, x=ids, y=[round(100 * d.share_from, 1) for d in found.subgoals]),
        go.Bar(name=found.to, x=ids, y=[round(100 * d.share_to, 1) for d in found.subgoals]),
    ])
    fig.update_layout(barmode="group", title=f"What changed: {found.from_} → {found.to}", yaxis_title="% of samples",
                      height=340, margin={"t": 50, "b": 40})
    return fig


def diff_markdown(found) -> str:
    """The diff as a Markdown table plus gap and sample changes."""
    s = found.samples
    lines = [f"**What changed: {found.from_} → {found.to}** — samples +{s['added']} −{s['removed']} ~{s['changed']}", "",
             "| subgoal | before | after | change | significant |", "|---|---:|---:|---:|---|"]
    for d in found.subgoals:
        flag = " ⚠ regression" if d.regression else ""
        lines.append(f"| {d.id} | {100 * d.share_from:.1f}% | {100 * d.share_to:.1f}% | {100 * d.delta:+.1f} pts | "
                     f"{'yes' if d.significant else 'no'} (p={d.p_value:.2g}){flag} |")
    for kind in ("closed", "opened", "changed"):
        if found.gaps[kind]:
            lines.append(f"\nGaps {kind}: " + ", ".join(f"{g.id} ({g.subgoal_id})" for g in found.gaps[kind]))
    return "\n".join(lines)


# --- views --------------------------------------------------------------------------------------------

async def timeline_view(out: "Out", ws: "Workspace") -> None:
    """Every version with its coverage, as a chart, with "What changed?" under it."""
    from goalcover.tools.history.versions import history

    found = await call(history, ws)
    rows = ["| version | created (UTC) | samples | fills | note |", "|---|---|---:|---:|---|"]
    rows += [f"| v{v.id} | {v.created_at} | {v.samples} | {v.fills} | {v.note or v.kind} |" for v in found.versions[-10:]]
    await out.send("**Coverage over time**\n\n" + "\n".join(rows), [action("what_changed", "What changed?")],
                   [cl.Plotly(name="timeline", figure=timeline_figure(found), display="inline", size="large")])


async def what_changed_view(out: "Out", ws: "Workspace") -> None:
    """The diff of the previous version against the current one, with its chart."""
    from goalcover.tools.history.diff import diff

    found = await call(diff, ws)
    await out.send(diff_markdown(found), [action("timeline", "Coverage over time")],
                   [cl.Plotly(name="what-changed", figure=diff_figure(found), display="inline", size="large")])


async def verify_view(out: "Out", ws: "Workspace") -> None:
    """After an accept: did the fills close their gaps, any regression? (Nothing when no fill is accepted.)"""
    from goalcover.tools.core.errors import BadInput
    from goalcover.tools.fill.verify import verify

    try:
        found = await call(verify, ws)
    except BadInput:
        return
    lines = []
    for v in found.gaps:
        lines.append(f"**{v.gap_id}** ({v.subgoal_id}): **{v.status}** — {100 * v.share_before:.1f}% → {100 * v.share_after:.1f}%, "
                     f"{v.supporting_fills} supporting fills ({v.effective_support} after near-duplicates count once)")
        lines += [f"- regression on {d.id}: {100 * d.share_from:.1f}% → {100 * d.share_to:.1f}%" for d in v.regressions]
    await out.send("**Did the fills close the gap?**\n\n" + "\n".join(lines))


async def since_view(out: "Out", ws: "Workspace") -> None:
    """On resume: what happened since the last conversation showed this workspace (new versions, runs,
    accepted fills, exports); then remember now."""
    from goalcover.tools.history.versions import since_last_visit

    text = await asyncio.to_thread(since_last_visit, ws)
    if text:
        await out.send(text, await asyncio.to_thread(history_actions, ws))


# --- the buttons' work ----------------------------------------------------------------------------------

async def pool_fill_plan_view(out: "Out", ws: "Workspace", gap_id: str, n: int = POOL_FILL_N) -> None:
    """The pool fill's plan (retrieved, duplicates, pairs to judge, cost); judging runs on "Run it"."""
    from goalcover.tools.fill.pool import pool_fill_plan

    plan = await asyncio.to_thread(pool_fill_plan, ws, gap_id, n)
    text = (f"**Fill {plan.gap_id} from the pool**\n\n| | |\n|---|---:|\n| pool samples retrieved | {plan.retrieved} |\n"
            f"| duplicates dropped | {plan.duplicates} |\n| samples to judge | {plan.judged} |\n| pairs not in the cache | {plan.to_score} |\n\n"
            f"**Estimated cost:** ~${plan.est_cost:.4f}\n\nRun it? Kept samples wait for your review before they count.")
    await out.send(text, [action("pool_fill_run", "Run it", gap_id=plan.gap_id, n=n), action("dismiss", "Not now")])


async def pool_fill_run(out: "Out", ws: "Workspace", gap_id: str, n: int) -> None:
    """Judge and propose the pool samples, then the review list."""
    from goalcover.tools.fill.pool import fill_from_pool
    from goalcover.ui import views

    result = await fill_from_pool(ws, gap_id, n)
    await out.send(f"From the pool: {result.judged} judged, {result.kept} kept for review, {result.duplicates} duplicates, "
                   f"{result.rejected_by_judge} rejected by the judge ({result.calls} calls).")
    await views.synthetic_view(out, ws, gap_id)
