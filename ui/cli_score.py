"""CLI commands for the goal and the judge: goal, score, report."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from goalcover.ui.cli_output import ProgressBar, err, open_workspace, out, print_json
from goalcover.ui.common import JsonOpt, WorkspaceOpt, handle_errors


# --- goal ------------------------------------------------------------------------------------------

@handle_errors
def goal(
    text: Annotated[Optional[str], typer.Argument(help="Your goal in plain words; the agent model splits it into subgoals.", show_default=False)] = None,
    file: Annotated[
        Optional[Path],
        typer.Option("--file", "-f", help="Set the goal from YAML/JSON: `text` and `subgoals` (title, description, evidence).", show_default=False),
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set the goal and its subgoals, or show the current ones (no arguments).

    With TEXT, the agent model (GOALCOVER_AGENT_MODEL or GOALCOVER_MODEL) proposes 4–8 atomic,
    non-overlapping, checkable subgoals. Editing a subgoal later re-scores only that subgoal.
    """
    from goalcover.tools.goal import current_goal, decompose, goal_to_yaml, load_goal_file, save_goal

    if text and file:
        raise typer.BadParameter("give the goal as TEXT or --file, not both")
    with open_workspace(workspace) as ws:
        if file:
            new_goal = load_goal_file(file)
        elif text:
            with err.status("asking the agent model for subgoals…"):
                new_goal = asyncio.run(decompose(ws, text))
        else:
            new_goal = None
        if new_goal:
            save_goal(ws, new_goal)
        shown = new_goal or current_goal(ws)
        root = ws.root
    assert shown is not None
    if as_json:
        print_json(shown.model_dump())
        return
    out.print(goal_to_yaml(shown), highlight=False, markup=False)
    if new_goal:
        source = f"from {file}" if file else "as proposed by the agent model"
        err.print(
            f"saved the goal and {len(shown.subgoals)} subgoals ({', '.join(s.id for s in shown.subgoals)}) {source} "
            f"to the workspace {root}; `goalcover score` scores them",
            highlight=False, markup=False, soft_wrap=True,
        )


# --- score -----------------------------------------------------------------------------------------

@handle_errors
def score(
    mode: Annotated[str, typer.Option("--mode", help="batched: one call per sample scores all subgoals; pair: one call per sample × subgoal.")] = "batched",
    concurrency: Annotated[Optional[int], typer.Option("--concurrency", "-c", min=1, help="Calls in flight at once (default GOALCOVER_CONCURRENCY, 8).", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the planned calls, tokens and cost; call nothing.")] = False,
    max_cost: Annotated[Optional[float], typer.Option("--max-cost", min=0, help="Stop cleanly before spending more than this many USD (needs GOALCOVER_*_PRICE_PER_MTOK).", show_default=False)] = None,
    engine: Annotated[str, typer.Option("--engine", help="local: one asyncio process; ray: Ray Data on a Ray cluster (pip install 'goalcover\\[ray]').")] = "local",
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="With --engine ray: auto (the cluster `ray start` runs here), ray://HOST:10001 or HOST:6379; default RAY_ADDRESS, else a private local Ray.", show_default=False)] = None,
    actors: Annotated[int, typer.Option("--actors", min=1, help="With --engine ray: Ray Data actors sending calls, each with --concurrency calls in flight (with --vllm: vLLM replicas, one GPU each).")] = 2,
    vllm: Annotated[Optional[str], typer.Option("--vllm", help="With --engine ray: judge with this model on vLLM replicas on GPU workers (ray.data.llm) instead of the endpoint.", show_default=False)] = None,
    ray_processor: Annotated[str, typer.Option("--ray-processor", help="With --engine ray: actors (the engine's own judge in Ray Data actors: its retries and repair rules) or http (ray.data.llm's HTTP request processor posting the same request bodies).")] = "actors",
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score every sample against every subgoal with the LLM judge (GOALCOVER_JUDGE_MODEL or GOALCOVER_MODEL).

    Each judgment is saved the moment it arrives: interrupt at any time (Ctrl-C, a crash, a kill) and run
    again to finish without paying twice. Only missing pairs are scored — new samples, edited subgoals,
    and judgments that failed before.

    --engine ray sends the calls through Ray Data on a Ray cluster; the workspace stays here and each
    block of calls is saved as it finishes (see the README's Ray section).
    """
    from goalcover.tools import scoring

    from goalcover.tools.errors import BadInput

    if engine not in ("local", "ray"):
        raise BadInput(f"--engine {engine!r}: choose local or ray")
    if engine == "local" and (ray_address or vllm or actors != 2 or ray_processor != "actors"):
        raise BadInput("--ray-address, --actors, --ray-processor and --vllm need --engine ray")
    if engine == "ray" and max_cost is not None:
        raise BadInput("--max-cost is not supported with --engine ray; see the cost first with --dry-run")

    with open_workspace(workspace) as ws:
        if dry_run:
            from goalcover.tools.plans import scoring_plan

            if as_json:
                plan, _, _ = scoring.plan(ws, mode)  # type: ignore[arg-type]
                print_json(plan.model_dump())
                return
            shown = scoring_plan(ws, mode, max_cost)
            out.print(shown.text(), highlight=False, markup=False)
            for what, value in shown.rows:
                out.print(f"  {what}: {value}", highlight=False, markup=False)
            return
        if max_cost is not None and ws.settings.input_price_per_mtok == ws.settings.output_price_per_mtok == 0:
            err.print("[yellow]warning:[/] --max-cost needs prices: set GOALCOVER_INPUT_PRICE_PER_MTOK and GOALCOVER_OUTPUT_PRICE_PER_MTOK")
        with ProgressBar("scoring", fields=("cost", "failed")) as bar:
            if engine == "ray":
                from goalcover.tools.ray_engine import score_on_ray

                result = score_on_ray(ws, mode, address=ray_address, actors=actors, concurrency=concurrency,  # type: ignore[arg-type]
                                      vllm_model=vllm, processor=ray_processor, progress=bar)
            else:
                result = asyncio.run(scoring.score(ws, mode, concurrency=concurrency, max_cost=max_cost, progress=bar))  # type: ignore[arg-type]
        with ProgressBar("indexing") as bar:
            scoring.index_scores(ws, progress=bar)
    if as_json:
        print_json(result.model_dump())
        return
    out.print(
        f"{result.judgments} judgments ({result.new} new, {result.cached} cached, {result.failed} failed) · "
        f"{result.calls} calls · {result.prompt_tokens + result.completion_tokens:,} tokens · ${result.cost:.4f} · "
        f"{result.elapsed_s:.1f} s",
        highlight=False,
    )
    if result.stopped:
        out.print(f"stopped early: {result.stopped}; run again (with a higher --max-cost) to continue", highlight=False)
    if result.failed:
        out.print("failed judgments are listed in `goalcover report` and retried by the next `goalcover score`", highlight=False)


# --- report ----------------------------------------------------------------------------------------

@handle_errors
def report(
    format: Annotated[str, typer.Option("--format", help="md, html (one self-contained file with charts) or json.")] = "md",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write to this file (html defaults to WORKSPACE/reports/coverage.html).", show_default=False)] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show coverage per subgoal, as Markdown, JSON or an HTML page with charts.

    Per subgoal: supporting samples, share, mean score, histogram and a weak flag; then off-goal samples,
    failed judgments, and coverage with accepted synthetic samples next to before.
    """
    from goalcover.tools.coverage import coverage
    from goalcover.tools.report import render

    fmt = "json" if as_json else format
    if fmt not in ("md", "html", "json"):
        raise typer.BadParameter(f"--format {format!r}: choose md, html or json")
    with open_workspace(workspace) as ws:
        text = render(coverage(ws), fmt)  # type: ignore[arg-type]
        if fmt == "html" and output is None:
            output = ws.reports_dir / "coverage.html"
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    from goalcover.tools.files import write_atomic

    write_atomic(output, text)
    err.print(f"wrote {output}", highlight=False)
