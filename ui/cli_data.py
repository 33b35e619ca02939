"""CLI commands over the dataset: ingest, search, info."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from goalcover.ui.cli_output import ProgressBar, err, id_column, open_workspace, out, print_json
from goalcover.ui.common import JsonOpt, WorkspaceOpt, handle_errors
from goalcover.ui.inert import inert


# --- ingest ----------------------------------------------------------------------------------------

@handle_errors
def ingest(
    file: Annotated[Path, typer.Argument(help="Dataset: a .jsonl, .json (an array), .csv, .tsv or .parquet file (.jsonl/.json/.csv also .gz or .zst), a folder of shards, or a Hugging Face save_to_disk folder.", show_default=False)],
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
    engine: Annotated[str, typer.Option("--engine", help="local: embed in this process; ray: embed with Ray Data actors on a Ray cluster (pip install 'goalcover\\[ray]'; GPU workers with GOALCOVER_EMBED_DEVICE=cuda).")] = "local",
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="With --engine ray: auto, ray://HOST:10001 or HOST:6379; default RAY_ADDRESS, else a private local Ray.", show_default=False)] = None,
    actors: Annotated[int, typer.Option("--actors", min=1, help="With --engine ray: embedding actors (one CPU, or one GPU, each).")] = 2,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Read a dataset into the workspace and index it for search.

    Validates every record (a bad record stops the ingest with a message naming its line and field,
    unless --skip-invalid), keeps each record untouched for export, embeds the samples on CPU and stores
    them in Chroma. Streams in chunks and is atomic: a failed or interrupted ingest leaves the workspace
    as it was. Re-ingesting the same file only embeds what changed.
    """
    from contextlib import nullcontext

    from goalcover.tools.data.ingest import ingest_file
    from goalcover.tools.core.errors import BadInput

    if add and replace:
        raise typer.BadParameter("--add and --replace exclude each other")
    if engine not in ("local", "ray"):
        raise BadInput(f"--engine {engine!r}: choose local or ray")
    if engine == "local" and (ray_address or actors != 2):
        raise BadInput("--ray-address and --actors need --engine ray")
    if engine == "ray":
        from goalcover.tools.scale.ray_embed import RayEmbedder

        embedding = RayEmbedder(ray_address, actors)
    else:
        embedding = nullcontext()
    with open_workspace(workspace) as ws, embedding as embedder:
        with ProgressBar("embedding") as bar:
            result = ingest_file(ws, file, format, add=add, replace=replace, skip_invalid=skip_invalid, progress=bar,  # type: ignore[arg-type]
                                 embedder=embedder)
    _prepare_fast_search()
    for warning in result.warnings[:5]:
        err.print(f"[yellow]warning:[/] {inert(warning)}", highlight=False)
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


def _prepare_fast_search() -> None:
    """Once per machine, after the first ingest: export the embedding model to ONNX so that `search`
    starts in about a second instead of loading PyTorch (tools/data/embeddings.py, `_query_model`)."""
    from goalcover.tools.data import embeddings

    if embeddings.query_model_ready():
        return
    with err.status("preparing the fast search model (once per machine, about 30 s)…"):
        embeddings.prepare_query_model()


# --- search ----------------------------------------------------------------------------------------

@handle_errors
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in plain words (semantic search).", show_default=False)],
    k: Annotated[int, typer.Option("-k", help="How many samples to return.", min=1)] = 10,
    where: Annotated[
        Optional[list[str]],
        typer.Option(
            "--where",
            help="Filter on a metadata field: FIELD=VALUE, FIELD!=VALUE, FIELD<=N, FIELD>=N (repeatable; e.g. "
            "app=Gmail, score_S3<=2 once scored; a CSV's numbers and true/false compare as such; goalcover.source "
            "is GoalCover's source when your records have their own).",
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find the samples closest in meaning to QUERY."""
    from goalcover.tools.data.ingest import search as search_samples
    from goalcover.tools.data.index import parse_where

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
        table.add_row(inert(hit.id), f"{hit.similarity:.3f}", inert(snippet[:160] + ("…" if len(snippet) > 160 else "")))
    out.print(table)


# --- info ------------------------------------------------------------------------------------------

@handle_errors
def info(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Show what the workspace holds: files, samples, length statistics."""
    from goalcover.tools.data.ingest import describe

    with open_workspace(workspace) as ws:
        summary = describe(ws)
        summary["workspace"] = str(ws.root)
    if as_json:
        print_json(summary)
        return
    # Paths stay whole on their own lines (they are copied and pasted); a table cell would fold or cut them.
    out.print(f"workspace {inert(summary['workspace'], markup=False)}", soft_wrap=True, highlight=False, markup=False)
    for src in summary.get("sources", []) if summary["samples"] else []:
        out.print(f"source    {inert(src['path'], markup=False)} ({src.get('file_type', '')})", soft_wrap=True, highlight=False, markup=False)
    table = Table(show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("samples", f"{summary['samples']:,}")
    if summary["samples"]:
        table.add_row("format", str(summary.get("format")))
        for label, key in (("characters", "chars"), ("tokens (est.)", "est_tokens")):
            stats = summary.get(key) or {}
            if stats:
                table.add_row(label, " · ".join(f"{k} {stats[k]:,.0f}" for k in ("min", "median", "mean", "p95", "max") if k in stats))
    from goalcover.tools.core.goal import current_goal

    with open_workspace(workspace) as ws:
        goal = current_goal(ws, required=False)
    table.add_row("goal", inert(f"{goal.text} ({len(goal.subgoals)} subgoals)") if goal else "none yet (`goalcover goal`)")
    out.print(table)
