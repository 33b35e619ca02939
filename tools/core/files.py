"""Small file helpers shared by reports and exports."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from goalcover.tools.core.errors import BadInput


def ordinary_mode() -> int:
    """The permissions a plain `open(path, "w")` would give a new file: 0o666 less the umask (usually 0o644)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write `data` (text as UTF-8) to `path` via a temporary file in the same folder and a rename, so
    readers never see half a file; the file gets ordinary permissions (not mkstemp's 0600). Returns the
    resolved path; raises BadInput when `path` is a folder."""
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
        os.chmod(tmp, ordinary_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
