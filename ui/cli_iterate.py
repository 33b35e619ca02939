"""CLI commands of iterative gap-filling: history, diff, pool add / pool fill, verify."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from goalcover.ui.cli_output import err, open_workspace, out, print_json
from goalcover.ui.common import JsonOpt, WorkspaceOpt, handle_errors


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.1f}%"


def _ci(ci) -> str:
    low, high = ci
    return "" if low is None else f" [{_pct(low)}, {_pct(high)}]"


@handle_errors
def history(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """List the dataset's versions with their coverage per subgoal.

    A version is recorded by every ingest that changes the dataset and every review that changes the
    accepted fills. Coverage of each version is recomputed from the cached judgments under the current goal
    and judge: no model call.
    """
    from goalcover.tools.history.versions import history as versions

    with open_workspace(workspace) as ws:
        found = versions(ws)
    if as_json:
        print_json(found.model_dump())
        return
    if not found.versions:
        out.print("no dataset versions yet: run `goalcover ingest FILE`")
        return
    ids = [r.id for r in found.versions[-1].coverage]
    table = Table(show_header=True)
    for col in ("version", "created (UTC)", "samples", "fills", "note", *ids):
        table.add_column(col)
    for v in found.versions:
        shares = {r.id: _pct(r.share) + ("*" if r.weak else "") for r in v.coverage}
        table.add_row(f"v{v.id}", v.created_at, str(v.samples), str(v.fills), escape(v.note or v.kind), *[shares.get(i, "-") for i in ids])
    out.print(table)
    out.print("shares from cached judgments; * weak", highlight=False)


def _print_diff(found) -> None:
    if found.from_ == found.to:
        out.print(f"only one dataset version so far ({found.to}): nothing to compare yet", highlight=False)
        return
    out.print(f"{found.from_} → {found.to}: samples +{found.samples['added']} -{found.samples['removed']} "
              f"~{found.samples['changed']}", highlight=False, markup=False)
    table = Table(show_header=True)
    for col in ("subgoal", "from", "to", "change", "significant", "note"):
        table.add_column(col)
    for d in found.subgoals:
        note = "REGRESSION" if d.regression else ("now weak" if d.weak_to and not d.weak_from else ("no longer weak" if d.weak_from and not d.weak_to else ""))
        table.add_row(d.id, _pct(d.share_from) + _ci(d.ci_from), _pct(d.share_to) + _ci(d.ci_to), f"{100 * d.delta:+.1f} pts",
                      f"yes (p={d.p_value:.3g})" if d.significant else f"no (p={d.p_value:.3g})", note)
    out.print(table)
    for kind in ("closed", "opened", "changed"):
        for g in found.gaps[kind]:
            out.print(f"gap {kind}: {g.id} ({g.subgoal_id}) {escape(g.label)} size {g.size_from} → {g.size_to}", highlight=False)
    if found.regressions:
        out.print(f"regressions: {', '.join(found.regressions)}", highlight=False)


@handle_errors
def diff(
    from_version: Annotated[Optional[str], typer.Argument(metavar="[FROM]", help="Version to start from (e.g. 3 or v3); default the one before TO.", show_default=False)] = None,
    to_version: Annotated[Optional[str], typer.Argument(metavar="[TO]", help="Version to compare with; default the current one.", show_default=False)] = None,
    against: Annotated[Optional[Path], typer.Option("--against", help="Another workspace: its dataset judged under this workspace's goal.", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="With --against: print the judging plan and cost; call nothing.")] = False,
    max_cost: Annotated[Optional[float], typer.Option("--max-cost", help="With --against: stop judging before this many USD.", show_default=False)] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show what a change of the dataset did to each subgoal and gap.

    Per subgoal: share before and after with 95% intervals, the change, and whether it is significant
    (Fisher's exact test, p < 0.05); gaps closed, opened and changed; samples added, removed and changed;
    regressions flagged. With --against DIR the other workspace's samples are judged under this goal first:
    content already judged here costs nothing, and the cost of the rest is shown before any call.
    """
    from goalcover.tools.history import diff as diffs
    from goalcover.tools.core.errors import BadInput

    with open_workspace(workspace) as ws:
        if against is None:
            if dry_run or max_cost is not None:
                raise BadInput("--dry-run and --max-cost go with --against DIR (a diff of versions calls nothing)")
            found = diffs.diff(ws, from_version, to_version)
        else:
            if from_version or to_version:
                raise BadInput("give either versions (FROM TO) or --against DIR, not both")
            plan, _ = asyncio.run(diffs.diff_against(ws, against, dry_run=True))
            err.print(f"judging {against}: {plan.samples} samples, {plan.to_score} pairs not in the cache "
                      f"({plan.cached} cached), about {plan.calls} calls, est. ${plan.est_cost:.4f}", highlight=False, markup=False)
            if dry_run:
                if as_json:
                    print_json({"plan": plan.model_dump()})
                return
            with err.status(f"judging the new content of {against}…"):
                _, found = asyncio.run(diffs.diff_against(ws, against, max_cost=max_cost))
    assert found is not None
    if as_json:
        print_json(found.dump())
        return
    _print_diff(found)


pool_app = typer.Typer(help="A pool of candidate real samples, kept apart from the dataset, to fill gaps from.", no_args_is_help=True)


@pool_app.command("add")
@handle_errors
def pool_add(
    file: Annotated[Path, typer.Argument(help="A file (or folder of shards) in the dataset's shape.", show_default=False)],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add candidate samples to the pool (same readers and checks as ingest; the dataset's shape)."""
    from goalcover.tools.fill.pool import add_to_pool

    with open_workspace(workspace) as ws:
        with err.status(f"reading and embedding {file}…"):
            result = add_to_pool(ws, file)
    if as_json:
        print_json(result.model_dump())
        return
    out.print(f"pool: {result.new} new of {result.samples} samples from {result.file} ({result.in_dataset} already in the "
              f"dataset, {result.invalid} invalid); the pool holds {result.pool_size}", highlight=False, markup=False, soft_wrap=True)


@pool_app.command("fill")
@handle_errors
def pool_fill(
    gap: Annotated[str, typer.Option("--gap", "-g", help="The gap to fill, e.g. G1 (see `goalcover gaps`).", show_default=False)],
    n: Annotated[int, typer.Option("-n", min=1, help="How many pool samples to judge at most.")] = 50,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Retrieve and de-duplicate; print the judging plan and cost; call nothing.")] = False,
    max_cost: Annotated[Optional[float], typer.Option("--max-cost", help="Stop judging before this many USD.", show_default=False)] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Propose pool samples for a gap: the nearest to it, judged against every subgoal, kept if they support it.

    Near-duplicates of the dataset, of earlier fills and of each other are dropped; the cost of judging is
    printed before any call. Kept samples wait for `goalcover review` like synthetic ones, with their pool
    file and line; accepted ones go into `goalcover export --with-synthetic`.
    """
    from goalcover.tools.fill.pool import fill_from_pool

    with open_workspace(workspace) as ws:
        plan = asyncio.run(fill_from_pool(ws, gap, n, dry_run=True))
        err.print(f"{plan.gap_id}: {plan.judged} pool samples to judge ({plan.duplicates} duplicates dropped), "
                  f"{plan.to_score} pairs not in the cache, est. ${plan.est_cost:.4f}", highlight=False, markup=False)
        if dry_run:
            result = plan
        else:
            with err.status(f"judging pool samples for {gap}…"):
                result = asyncio.run(fill_from_pool(ws, gap, n, max_cost=max_cost))
    if as_json:
        print_json(result.model_dump())
        return
    if dry_run:
        return
    out.print(f"{result.gap_id}: retrieved {result.retrieved} · duplicates {result.duplicates} · judged {result.judged} · "
              f"kept {result.kept} · rejected by the judge {result.rejected_by_judge} · {result.calls} calls", highlight=False)
    for p in result.provenance[:10]:
        out.print(f"  {p['id']}  {Path(p['source']).name}:{p['line']}", highlight=False, markup=False)
    if result.kept:
        out.print(f"review them: goalcover review --gap {result.gap_id}", highlight=False)


@handle_errors
def verify(
    gap: Annotated[Optional[str], typer.Option("--gap", "-g", help="Only this gap (default: every gap with accepted fills).", show_default=False)] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check whether the accepted fills closed their gap, and whether any other subgoal regressed.

    The target subgoal's share without and with the fills (95% intervals), the gap's status (closed,
    shrunk, open), regressions on other subgoals, and the effective count of added support (near-duplicate
    fills count once). From cached judgments: no model call.
    """
    from goalcover.tools.fill.verify import verify as check

    with open_workspace(workspace) as ws:
        result = check(ws, gap)
    if as_json:
        print_json(result.model_dump())
        return
    for v in result.gaps:
        out.print(f"{v.gap_id} ({v.subgoal_id}): {v.status.upper()} — share {_pct(v.share_before)}{_ci(v.ci_before)} → "
                  f"{_pct(v.share_after)}{_ci(v.ci_after)}; {v.fills} fills, {v.supporting_fills} supporting, "
                  f"effective {v.effective_support}", highlight=False, markup=False, soft_wrap=True)
        for d in v.regressions:
            out.print(f"  regression {d.id}: {_pct(d.share_from)} → {_pct(d.share_to)} ({100 * d.delta:+.1f} pts"
                      f"{', now weak' if d.weak_to and not d.weak_from else ''})", highlight=False, markup=False)
    if not result.regressions:
        out.print("no regression on other subgoals", highlight=False)
