"""What every CLI command prints with: the stdout console, one-object JSON, progress bars on stderr that
fit 80 columns, id columns that are never cut, and the workspace opener."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from goalcover.ui.common import err
from goalcover.ui.inert import inert_json

__all__ = ["out", "err", "print_json", "open_workspace", "ProgressBar", "id_column"]

out = Console()

def print_json(payload: Any) -> None:
    """One JSON object on stdout (the `--json` output)."""
    sys.stdout.write(inert_json(payload) + "\n")


def open_workspace(workspace: Path | None, **overrides):
    """The workspace at `workspace` (default from GOALCOVER_WORKSPACE or ./goalcover-workspace)."""
    from goalcover.tools.core.workspace import Workspace

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
