"""`goalcover`: the engine on the command line, no agent needed.

Every command takes --workspace (env GOALCOVER_WORKSPACE); exit 0 on success, 2 on bad input or usage,
1 on other failures. --json prints one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from goalcover.tools.errors import GoalCoverError

app = typer.Typer(
    name="goalcover",
    help="Audit a fine-tuning dataset against your goal: ingest it, split the goal into subgoals, score "
    "every sample against every subgoal with an LLM judge, and see what the data teaches and what it lacks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

WorkspaceOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--workspace",
        "-w",
        help="Folder that holds the project's state (default ./goalcover-workspace, env GOALCOVER_WORKSPACE).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of a summary.")]


def handle_errors(command):
    """Turn engine errors into one clear line and the design's exit codes — never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except GoalCoverError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted; run the command again to continue where it stopped")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:  # a bug: say so plainly, keep the traceback for those who ask
            if os.environ.get("GOALCOVER_DEBUG"):
                raise
            err.print(
                f"[bold red]internal error:[/] {type(exc).__name__}: {exc} (set GOALCOVER_DEBUG=1 for the traceback)",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1) from None

    return wrapper


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, default=str) + "\n")


def open_workspace(workspace: Path | None, **overrides):
    from goalcover.tools.workspace import Workspace

    return Workspace.open(workspace, **overrides)


class ProgressBar:
    """A rich progress bar on stderr that appears with the first update (so errors print cleanly)."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.bar = None

    def __call__(self, done: int, total: int, **fields: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        if self.bar is None:
            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=err,
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task(self.description, total=total, info="")
        info = " · ".join(f"{k} {v}" for k, v in fields.items())
        self.bar.update(self.task, completed=done, total=total, info=info)

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


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
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
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
    table.add_column("id", no_wrap=True)
    table.add_column("sim", justify="right")
    table.add_column("text")
    for hit in hits:
        snippet = " ".join(hit.text.split())
        table.add_row(hit.id, f"{hit.similarity:.3f}", snippet[:160] + ("…" if len(snippet) > 160 else ""))
    out.print(table)


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
    out.print_json(json.dumps(summary, default=str))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
