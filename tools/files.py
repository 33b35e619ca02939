"""Small file helpers shared by reports and exports."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from goalcover.tools.errors import BadInput


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write via a temporary file in the same folder and rename, so readers never see half a file."""
    path = path.expanduser().resolve()
    if path.is_dir():
        raise BadInput(f"{path}: is a directory; give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
