"""The app's Export button: the engine's export into the workspace's exports/ folder, by the rules the
agent's export_dataset tool follows (inside exports/ only, the dataset's own file type, accepted synthetic
samples included when there are any).

When the engine offers one function for it (`export.export_to_workspace`), that is what runs; until then
this adapter calls `export.export` with the same confinement the agent tool applies.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from goalcover.tools.errors import BadInput
from goalcover.tools.workspace import Workspace


def default_filename(ws: Workspace) -> str:
    sources = ws.store.sources()
    if not sources:
        raise BadInput("there is no dataset to export yet: upload one first")
    source = Path(sources[0]["path"])
    return f"{source.stem}.goalcover{source.suffix}"


def _export(ws: Workspace, filename: str | None, drop_off_goal: bool) -> object:
    from goalcover.tools import export as engine
    from goalcover.tools.synthesis import list_synthetic

    with_synthetic = bool(list_synthetic(ws, state="accepted"))
    shared = getattr(engine, "export_to_workspace", None)
    filename = filename or default_filename(ws)
    if shared is not None:
        return shared(ws, filename, drop_off_goal=drop_off_goal, with_synthetic=with_synthetic)
    folder = ws.exports_dir.resolve()
    target = (folder / filename).resolve()
    if not target.is_relative_to(folder) or target == folder:
        raise BadInput(f"{filename}: exports go inside {folder}; give a file name there, not a path outside it")
    return engine.export(ws, target, drop_off_goal=drop_off_goal, with_synthetic=with_synthetic, allowed_root=folder)


async def export_to_workspace(ws: Workspace, filename: str | None = None, drop_off_goal: bool = False):
    """The ExportResult of exporting the dataset into WORKSPACE/exports/; raises BadInput as the engine does."""
    return await asyncio.to_thread(_export, ws, filename, drop_off_goal)
