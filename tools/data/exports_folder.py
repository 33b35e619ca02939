"""Exports into the workspace's own `exports/` folder: the one rule the agent's export tool and the web
app's Export button both follow. A file name only (no path leaves the folder), the dataset's own file type
by default, and the engine's `export` underneath (lossless records, manifest beside the file)."""

from __future__ import annotations

from pathlib import Path

from goalcover.tools.core.errors import BadInput
from goalcover.tools.core.workspace import Workspace


def default_filename(ws: Workspace) -> str:
    """`NAME.goalcover.EXT` after the workspace's first source file (`contracts.jsonl` ->
    `contracts.goalcover.jsonl`). Raises BadInput when the workspace holds no dataset."""
    sources = ws.store.sources()
    if not sources:
        raise BadInput(f"the workspace {ws.root} holds no dataset to export yet")
    source = Path(sources[0]["path"])
    name = source.name
    for suffix in (".gz", ".zst"):  # compressed sources export under their inner file type's name
        name = name.removesuffix(suffix)
    stem, dot, ext = name.rpartition(".")
    return f"{stem}.goalcover.{ext}" if dot else f"{name}.goalcover"


def export_to_workspace(
    ws: Workspace,
    filename: str | None = None,
    *,
    drop_off_goal: bool = False,
    with_synthetic: bool | None = None,
):
    """Export the dataset to WORKSPACE/exports/`filename` (default `default_filename`); returns the
    engine's ExportResult (path, written, dropped, synthetic, manifest).

    `with_synthetic=None` adds the accepted synthetic samples when there are any. Raises BadInput when
    `filename` names a path outside exports/ (absolute, `..`, the folder itself), a symlink, and whatever
    `export.export` raises (wrong extension, nothing to export)."""
    from goalcover.tools.data.export import export
    from goalcover.tools.fill.synthesis import list_synthetic

    folder = ws.exports_dir.resolve()
    name = filename or default_filename(ws)
    joined = folder / name
    # The folder part resolved (a `..` or a linked subfolder cannot leave exports/); the name itself is not,
    # so a symlink planted at it is refused by export rather than followed out of the folder (F10).
    target = joined.parent.resolve() / joined.name
    if not target.is_relative_to(folder) or target == folder or joined.name in ("", ".", ".."):
        raise BadInput(f"{name}: exports go inside {folder}; give a file name there, not a path outside it")
    if with_synthetic is None:
        with_synthetic = bool(list_synthetic(ws, state="accepted"))
    return export(ws, target, drop_off_goal=drop_off_goal, with_synthetic=with_synthetic, allowed_root=folder)
