"""`goalcover`: the engine on the command line, no agent needed.

Every command takes --workspace (env GOALCOVER_WORKSPACE); exit 0 on success, 2 on bad input or usage,
1 on other failures. --json prints one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from goalcover.ui.common import JsonOpt, WorkspaceOpt, err, handle_errors, tidy_help

app = typer.Typer(
    name="goalcover",
    help="Audit a fine-tuning dataset against your goal: ingest it, split the goal into subgoals, score "
    "every sample against every subgoal with an LLM judge, and see what the data teaches and what it lacks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()

def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, default=str) + "\n")


def open_workspace(workspace: Path | None, **overrides):
    from goalcover.tools.workspace import Workspace

    return Workspace.open(workspace, **overrides)


class ProgressBar:
    """A rich progress bar on stderr that appears with the first update (so errors print cleanly) and fits
    80 columns: a short label, the bar, done/total, the time left and at most two short fields."""

    WIDTH = 80

    def __init__(self, description: str, fields: tuple[str, ...] = ()) -> None:
        self.description = description
        self.fields = fields  # which progress fields to show (e.g. cost, failed), in this order
        self.bar = None

    def __call__(self, done: int, total: int, **fields: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        if self.bar is None:
            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=16),
                MofNCompleteColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=err,
                transient=True,
                expand=False,
            )
            self.bar.start()
            self.task = self.bar.add_task(self.description, total=total, info="")
        info = " · ".join(f"{fields[k]} {k}" if k == "failed" else str(fields[k]) for k in self.fields if k in fields)
        self.bar.update(self.task, completed=done, total=total, info=info)

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def id_column(table: Table, name: str, ids: list[str]) -> None:
    """A table column for ids: never cut or folded (ids are what users copy), as wide as the longest."""
    table.add_column(name, no_wrap=True, min_width=max([len(name), *map(len, ids)]), overflow="ignore")


# --- ingest ----------------------------------------------------------------------------------------

@app.command()
@handle_errors
def ingest(
    file: Annotated[Path, typer.Argument(help="Dataset file: .jsonl, .json (an array), .csv or .parquet.", show_default=False)],
    format: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="Record shape: auto, alpaca (instruction/input/output), messages (OpenAI chat), sharegpt "
            "(conversations/from/value), prompt-completion, text.",
        ),
    ] = "auto",
    add: Annotated[bool, typer.Option("--add", help="Add this file to a workspace that holds another file of the same shape.")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Drop what the workspace holds and start over with this file.")] = False,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid",
            help="Ingest the valid records and write the rejected ones, with reasons, to WORKSPACE/rejected/.",
        ),
    ] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Read a dataset into the workspace and index it for search.

    Validates every record (a bad record stops the ingest with a message naming its line and field,
    unless --skip-invalid), keeps each record untouched for export, embeds the samples on CPU and stores
    them in Chroma. Re-ingesting the same file only embeds what changed.
    """
    from goalcover.tools.dataset import ingest_file

    if add and replace:
        raise typer.BadParameter("--add and --replace exclude each other")
    with open_workspace(workspace) as ws:
        with ProgressBar("embedding") as bar:
            result = ingest_file(ws, file, format, add=add, replace=replace, skip_invalid=skip_invalid, progress=bar)  # type: ignore[arg-type]
    for warning in result.warnings[:5]:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    if len(result.warnings) > 5:
        err.print(f"[yellow]warning:[/] … and {len(result.warnings) - 5} more", highlight=False)
    if as_json:
        print_json(result.model_dump())
        return
    table = Table(title=f"{Path(result.file).name} — {result.samples} samples, {result.format} ({result.file_type})", show_header=True)
    table.add_column("length")
    for col in ("min", "mean", "median", "p95", "max"):
        table.add_column(col, justify="right")
    for name, stats in (("characters", result.chars), ("tokens (est.)", result.est_tokens)):
        if stats:
            table.add_row(name, *(f"{getattr(stats, c):,.0f}" for c in ("min", "mean", "median", "p95", "max")))
    out.print(table)
    out.print(
        f"new {result.new} · changed {result.changed} · unchanged {result.unchanged} · removed {result.removed} · "
        f"embedded {result.embedded} · exact duplicates {result.exact_duplicates} · invalid {result.invalid}",
        highlight=False,
    )
    if result.rejected_report:
        out.print(f"rejected records and reasons: {result.rejected_report}", highlight=False)


# --- search ----------------------------------------------------------------------------------------

@app.command()
@handle_errors
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in plain words (semantic search).", show_default=False)],
    k: Annotated[int, typer.Option("-k", help="How many samples to return.", min=1)] = 10,
    where: Annotated[
        Optional[list[str]],
        typer.Option(
            "--where",
            help="Filter on a metadata field: FIELD=VALUE, FIELD!=VALUE, FIELD<=N, FIELD>=N (repeatable; e.g. "
            "app=Gmail, score_S3<=2 once scored).",
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find the samples closest in meaning to QUERY."""
    from goalcover.tools.dataset import search as search_samples
    from goalcover.tools.index import parse_where

    with open_workspace(workspace) as ws:
        hits = search_samples(ws, query, k, parse_where(where or []))
    if as_json:
        print_json({"query": query, "hits": [h.model_dump() for h in hits]})
        return
    table = Table(show_header=True)
    id_column(table, "id", [h.id for h in hits])
    table.add_column("sim", justify="right")
    table.add_column("text")
    for hit in hits:
        snippet = " ".join(hit.text.split())
        table.add_row(escape(hit.id), f"{hit.similarity:.3f}", escape(snippet[:160] + ("…" if len(snippet) > 160 else "")))
    out.print(table)


# --- goal ------------------------------------------------------------------------------------------

@app.command()
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

@app.command()
@handle_errors
def score(
    mode: Annotated[str, typer.Option("--mode", help="batched: one call per sample scores all subgoals; pair: one call per sample × subgoal.")] = "batched",
    concurrency: Annotated[Optional[int], typer.Option("--concurrency", "-c", min=1, help="Calls in flight at once (default GOALCOVER_CONCURRENCY, 8).", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the planned calls, tokens and cost; call nothing.")] = False,
    max_cost: Annotated[Optional[float], typer.Option("--max-cost", min=0, help="Stop cleanly before spending more than this many USD (needs GOALCOVER_*_PRICE_PER_MTOK).", show_default=False)] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score every sample against every subgoal with the LLM judge (GOALCOVER_JUDGE_MODEL or GOALCOVER_MODEL).

    Each judgment is saved the moment it arrives: interrupt at any time (Ctrl-C, a crash, a kill) and run
    again to finish without paying twice. Only missing pairs are scored — new samples, edited subgoals,
    and judgments that failed before.
    """
    from goalcover.tools import scoring

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

@app.command()
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


# --- gaps, why -------------------------------------------------------------------------------------

@app.command()
@handle_errors
def gaps(
    subgoal: Annotated[Optional[str], typer.Option("--subgoal", "-s", help="Only this subgoal (e.g. S3), weak or not.", show_default=False)] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find the capability gaps of the weak subgoals.

    Clusters the judge's explanations of low-scoring samples and has the agent model name each cluster:
    what is missing and what would fill it. A subgoal almost nothing supports gets one "uncovered" gap.
    Rerunning on unchanged data makes no new LLM call.
    """
    from goalcover.tools.gaps import find_gaps

    with open_workspace(workspace) as ws:
        with err.status("clustering explanations and naming gaps…"):
            found = asyncio.run(find_gaps(ws, subgoal))
    if as_json:
        print_json({"gaps": [g.model_dump(exclude={"member_ids"}) for g in found]})
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
        table.add_row(g.id, g.subgoal_id, str(g.size), escape(g.label), escape(g.description), escape("\n".join(g.sample_ids[:3])))
    out.print(table)


@app.command()
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
    from goalcover.tools.why import why as explain

    with open_workspace(workspace) as ws:
        with err.status(f"looking into {subgoal}…"):
            answer = asyncio.run(explain(ws, subgoal, prose=not facts_only))
    if as_json:
        print_json(answer.model_dump())
        return
    out.print(answer.answer, highlight=False)


# --- synthesize, review, export --------------------------------------------------------------------

@app.command()
@handle_errors
def synthesize(
    gap: Annotated[str, typer.Option("--gap", "-g", help="The gap to fill, e.g. G1 (see `goalcover gaps`).", show_default=False)],
    n: Annotated[int, typer.Option("-n", min=1, help="How many candidates to generate.")] = 20,
    guidance: Annotated[Optional[str], typer.Option("--guidance", help='Extra direction, e.g. "make them harder".', show_default=False)] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate synthetic samples for a gap, in the dataset's own shape (GOALCOVER_SYNTH_MODEL).

    Candidates are judged like the data and kept only if they support the gap's subgoal; exact and near
    duplicates of the data or of each other are dropped. Kept samples wait for `goalcover review`.
    """
    from goalcover.tools.synthesis import synthesize as make

    with open_workspace(workspace) as ws:
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


@app.command()
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
    from goalcover.tools.synthesis import review as set_states

    with open_workspace(workspace) as ws:
        items = set_states(ws, accept or [], reject or [], gap)
    if as_json:
        print_json({"synthetic": [i.model_dump() for i in items]})
        return
    table = Table(show_header=True)
    id_column(table, "id", [i.id for i in items])
    id_column(table, "gap", [i.gap_id for i in items])
    for col in ("state", "score", "sample"):
        table.add_column(col)
    for i in items:
        snippet = " ".join(i.text.split())
        table.add_row(escape(i.id), i.gap_id, i.state, str(i.judge_score), escape(snippet[:120] + ("…" if len(snippet) > 120 else "")))
    out.print(table)


@app.command()
@handle_errors
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write, with the input's extension.", show_default=False)],
    drop_off_goal: Annotated[bool, typer.Option("--drop-off-goal", help="Leave out samples that no subgoal scores above 2.")] = False,
    with_synthetic: Annotated[bool, typer.Option("--with-synthetic", help="Add the accepted synthetic samples.")] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the dataset back in its own shape and file type, filtered and augmented, with manifest.json beside it.

    Untouched records come out exactly as they came in; the input file is never overwritten.
    """
    from goalcover.tools.export import export as write

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


# --- local models ----------------------------------------------------------------------------------

local_app = typer.Typer(help="Run on a local model: find a local OpenAI-compatible server, or start llama.cpp's.", no_args_is_help=True)
app.add_typer(local_app, name="local")


@local_app.command("detect")
@handle_errors
def local_detect(as_json: JsonOpt = False) -> None:
    """Look for OpenAI-compatible servers on the usual local ports (Ollama 11434, llama.cpp 8080, vLLM 8000)."""
    from goalcover.tools.local import detect, suggestion

    servers = detect()
    if as_json:
        print_json({"servers": [s.__dict__ for s in servers]})
        return
    out.print(suggestion(), highlight=False, markup=False, soft_wrap=True)


@local_app.command("serve")
@handle_errors
def local_serve(
    model: Annotated[Path, typer.Option("--model", "-m", help="A .gguf model file.", show_default=False)],
    port: Annotated[int, typer.Option("--port", help="Loopback port to serve on.")] = 8080,
    ctx: Annotated[int, typer.Option("--ctx", help="Context window in tokens.")] = 4096,
) -> None:
    """Start llama.cpp's OpenAI-compatible server on a GGUF model and serve until Ctrl-C.

    Needs the `local` extra (scripts/install-local.sh). Waits until the server answers and prints the
    settings to use.
    """
    from goalcover.tools.local import probe, serve, stop

    with err.status(f"starting llama.cpp on {model.name}…"):
        proc = serve(model, port=port, ctx=ctx)
    base_url = f"http://127.0.0.1:{port}/v1"
    name = (probe(base_url) or [str(model)])[0]
    out.print(f"serving {model.name} at {base_url}\nuse it with:\n  export OPENAI_BASE_URL={base_url} GOALCOVER_MODEL={name}", highlight=False, markup=False)
    try:
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop(proc)


# --- chat ------------------------------------------------------------------------------------------

def _register_chat_and_ui() -> None:
    from goalcover.ui.chat import chat_command
    from goalcover.ui.serve import ui_command

    app.command("chat")(handle_errors(chat_command))
    app.command("ui")(handle_errors(ui_command))


_register_chat_and_ui()


# --- info ------------------------------------------------------------------------------------------

@app.command()
@handle_errors
def info(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Show what the workspace holds: files, samples, length statistics."""
    from goalcover.tools.dataset import describe

    with open_workspace(workspace) as ws:
        summary = describe(ws)
        summary["workspace"] = str(ws.root)
    if as_json:
        print_json(summary)
        return
    table = Table(title=f"workspace {escape(summary['workspace'])}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("samples", f"{summary['samples']:,}")
    if summary["samples"]:
        table.add_row("format", str(summary.get("format")))
        for src in summary.get("sources", []):
            table.add_row("source", escape(f"{src['path']} ({src.get('file_type', '')})"))
        for label, key in (("characters", "chars"), ("tokens (est.)", "est_tokens")):
            stats = summary.get(key) or {}
            if stats:
                table.add_row(label, " · ".join(f"{k} {stats[k]:,.0f}" for k in ("min", "median", "mean", "p95", "max") if k in stats))
    from goalcover.tools.goal import current_goal

    with open_workspace(workspace) as ws:
        goal = current_goal(ws, required=False)
    table.add_row("goal", escape(f"{goal.text} ({len(goal.subgoals)} subgoals)") if goal else "none yet (`goalcover goal`)")
    out.print(table)


tidy_help(app)


def main() -> None:
    """The `goalcover` entry point; the chat leaves without the interpreter's slow teardown (see exit_now)."""
    try:
        app()
    except SystemExit as done:
        if sys.argv[1:2] == ["chat"]:
            from goalcover.ui.common import exit_now

            exit_now(done.code)
        raise


if __name__ == "__main__":
    main()
