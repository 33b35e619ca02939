"""CLI commands after coverage: gaps, why, synthesize, review, export."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from goalcover.ui.cli_output import err, id_column, open_workspace, out, print_json
from goalcover.ui.common import JsonOpt, WorkspaceOpt, handle_errors
from goalcover.ui.inert import inert


# --- gaps, why -------------------------------------------------------------------------------------

def _show_plan(step: str, ws, as_json: bool, **kwargs) -> None:
    """Print a paid step's plan (tools/core/plans.py): one line and its rows, or the PaidPlan as JSON."""
    from goalcover.tools.core import plans

    plan = plans.gaps_plan(ws, kwargs.get("subgoal_id")) if step == "gaps" else plans.synthesis_plan(ws, kwargs["gap_id"], kwargs["n"])
    if as_json:
        print_json(plan.model_dump())
        return
    out.print(plan.text(), highlight=False, markup=False)
    for what, value in plan.rows:
        out.print(f"  {what}: {value}", highlight=False, markup=False)


@handle_errors
def gaps(
    subgoal: Annotated[Optional[str], typer.Option("--subgoal", "-s", help="Only this subgoal (e.g. S3), weak or not.", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the most labelling calls, tokens and cost; call nothing.")] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find the capability gaps of the weak subgoals.

    Clusters the judge's explanations of low-scoring samples and has the agent model name each cluster:
    what is missing and what would fill it. A subgoal almost nothing supports gets one "uncovered" gap.
    Rerunning on unchanged data makes no new LLM call.
    """
    from goalcover.tools.fill.gaps import find_gaps
    from goalcover.tools.fill.gaps_predicted import weak_counts

    with open_workspace(workspace) as ws:
        if dry_run:
            _show_plan("gaps", ws, as_json, subgoal_id=subgoal)
            return
        with err.status("clustering explanations and naming gaps…"):
            found = asyncio.run(find_gaps(ws, subgoal))
        counts = weak_counts(ws, found)  # judged vs predicted weak samples (after a cascade)
    if as_json:
        print_json({"gaps": [g.model_dump(exclude={"member_ids", "predicted_ids"}) for g in found],
                    "weak": [c.model_dump() for c in counts]})
        return
    if not found:
        out.print("no gaps: no subgoal is weak" + (f" and {subgoal} has no low-scoring samples" if subgoal else ""))
        return
    table = Table(show_header=True)
    id_column(table, "gap", [g.id for g in found])
    id_column(table, "subgoal", [g.subgoal_id for g in found])
    table.add_column("size", justify="right")
    for col in ("label", "missing capability"):
        table.add_column(col)
    id_column(table, "examples", [g.sample_ids[0] for g in found if g.sample_ids])
    for g in found:
        size = str(g.size) + (f" + {g.predicted_size:,} predicted" if g.predicted_size else "")
        table.add_row(g.id, g.subgoal_id, size, inert(g.label), inert(g.description), inert("\n".join(g.sample_ids[:3])))
    out.print(table)
    from goalcover.ui.cli_predict import print_weak_counts

    print_weak_counts(counts)


@handle_errors
def why(
    subgoal: Annotated[str, typer.Argument(help="The subgoal to explain, e.g. S3.", show_default=False)],
    facts_only: Annotated[
        bool, typer.Option("--facts-only", help="Build the answer from the facts alone; call no model.")
    ] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Explain why a subgoal is weak, from the data.

    The answer cites coverage against the other subgoals, the subgoal's gaps (as `goalcover gaps` stored
    them) with counts and example samples, the best supporting samples, and what would close each gap.
    It only reads: it never clusters, names or renumbers gaps.

    For a weak subgoal the agent model writes prose over the facts, and every number and id in it is
    checked against them; a subgoal that is not weak gets its share against the median, with no model call.
    """
    from goalcover.tools.fill.why import why as explain

    with open_workspace(workspace) as ws:
        with err.status(f"looking into {subgoal}…"):
            answer = asyncio.run(explain(ws, subgoal, prose=not facts_only))
    if as_json:
        print_json(answer.model_dump())
        return
    out.print(inert(answer.answer), highlight=False)


# --- synthesize, review, export --------------------------------------------------------------------

@handle_errors
def synthesize(
    gap: Annotated[str, typer.Option("--gap", "-g", help="The gap to fill, e.g. G1 (see `goalcover gaps`).", show_default=False)],
    n: Annotated[int, typer.Option("-n", min=1, help="How many candidates to generate.")] = 20,
    guidance: Annotated[Optional[str], typer.Option("--guidance", help='Extra direction, e.g. "make them harder".', show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the planned calls, tokens and cost; call nothing.")] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate synthetic samples for a gap, in the dataset's own shape (GOALCOVER_SYNTH_MODEL).

    Candidates are judged like the data and kept only if they support the gap's subgoal; exact and near
    duplicates of the data or of each other are dropped. Kept samples wait for `goalcover review`.
    """
    from goalcover.tools.fill.synthesis import synthesize as make

    with open_workspace(workspace) as ws:
        if dry_run:
            _show_plan("synthesis", ws, as_json, gap_id=gap, n=n)
            return
        with err.status(f"writing and judging {n} candidates for {gap}…"):
            result = asyncio.run(make(ws, gap, n, guidance))
    if as_json:
        print_json(result.model_dump())
        return
    out.print(
        f"{result.gap_id}: generated {result.generated} of {result.requested} · kept {result.kept} · "
        f"duplicates {result.duplicates} · rejected by the judge {result.rejected_by_judge} · invalid {result.invalid}",
        highlight=False,
    )
    if result.kept:
        out.print(f"review them: goalcover review --gap {result.gap_id}", highlight=False)


@handle_errors
def review(
    gap: Annotated[Optional[str], typer.Option("--gap", "-g", help="Only the samples of this gap.", show_default=False)] = None,
    accept: Annotated[Optional[list[str]], typer.Option("--accept", help="Accept these ids (or `all` proposed ones).", show_default=False)] = None,
    reject: Annotated[Optional[list[str]], typer.Option("--reject", help="Reject these ids (or `all` proposed ones).", show_default=False)] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List synthetic samples with their review state, and accept or reject them.

    Accepted samples count in the report's coverage-after column and go into `goalcover export --with-synthetic`.
    """
    from goalcover.tools.fill.pool import provenance
    from goalcover.tools.fill.synthesis import review as set_states

    with open_workspace(workspace) as ws:
        items = set_states(ws, accept or [], reject or [], gap)
        origin = provenance(ws, [i.id for i in items])  # pool fills: their pool file and line
    if as_json:
        print_json({"synthetic": [{**i.model_dump(), **({"provenance": origin[i.id]} if i.id in origin else {})} for i in items]})
        return
    table = Table(show_header=True)
    id_column(table, "id", [i.id for i in items])
    id_column(table, "gap", [i.gap_id for i in items])
    for col in ("state", "score", "sample"):
        table.add_column(col)
    for i in items:
        snippet = " ".join(i.text.split())
        if i.id in origin:
            snippet = f"[pool {Path(origin[i.id]['source']).name}:{origin[i.id]['line']}] {snippet}"
        table.add_row(inert(i.id), i.gap_id, i.state, str(i.judge_score), inert(snippet[:120] + ("…" if len(snippet) > 120 else "")))
    out.print(table)


@handle_errors
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write, with the input's extension.", show_default=False)],
    drop_off_goal: Annotated[bool, typer.Option("--drop-off-goal", help="Leave out samples that no subgoal scores above 2.")] = False,
    with_synthetic: Annotated[bool, typer.Option("--with-synthetic", help="Add the accepted synthetic samples.")] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the dataset back in its own shape and file type, filtered and augmented, with its manifest beside it.

    Untouched records come out exactly as they came in; the input file is never overwritten.
    """
    from goalcover.tools.data.export import export as write

    with open_workspace(workspace) as ws:
        result = write(ws, output, drop_off_goal=drop_off_goal, with_synthetic=with_synthetic)
    if as_json:
        print_json(result.model_dump())
        return
    out.print(
        f"wrote {result.written} samples to {result.path} ({result.dropped} dropped, {result.synthetic} synthetic); "
        f"manifest: {result.manifest}",
        highlight=False,
        soft_wrap=True,
    )
