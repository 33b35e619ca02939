"""An export, manifest or report never lands on an input (issue 27, F10): the workspace's source files,
the pool's files (tools/fill/pool.py), or the workspace's own database and index. Compared by resolved
path and by `os.path.samefile` (hard links, other spellings of the same file)."""

from __future__ import annotations

import os
from pathlib import Path

from goalcover.tools.core.errors import BadInput
from goalcover.tools.core.files import output_path
from goalcover.tools.core.workspace import DB_NAME, Workspace


def input_paths(ws: Workspace) -> list[Path]:
    """The files and folders `ws` was read from: its sources, the pool's source files (when the pool's
    table exists), and the workspace's own `goalcover.sqlite` (with its -wal/-shm) and `chroma/`."""
    paths = [Path(s["path"]) for s in ws.store.sources()]
    db = ws.store.db
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pool_samples'").fetchone():
        paths += [Path(p) for (p,) in db.execute("SELECT DISTINCT source FROM pool_samples")]
    paths += [ws.root / (DB_NAME + end) for end in ("", "-wal", "-shm", "-journal")] + [ws.root / "chroma"]
    return paths


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output(ws: Workspace, path: Path, what: str = "output") -> Path:
    """`path` as it will be written (see files.output_path) once it is known to be none of the workspace's
    inputs nor inside an input folder. Raises BadInput naming the file: a symlink, a folder, or an input
    (`what` says which output it is: "export", "manifest", "report")."""
    path = output_path(path)
    for source in input_paths(ws):
        resolved = source.expanduser().resolve()
        if path == resolved or path.resolve() == resolved or _same(path, resolved) or (
            resolved.is_dir() and path.is_relative_to(resolved)
        ):
            raise BadInput(f"{path}: is an input of this workspace ({resolved}); refusing to overwrite it with the {what}. "
                           "Give another file name")
    return path
