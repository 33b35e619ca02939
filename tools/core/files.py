"""Small file helpers shared by reports and exports: atomic writes that never follow a symlink at the
final name, and temporary names that carry the writer's pid so a killed writer's leftovers are removed
by the next write into the same folder (issue 27, F10 and D6)."""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path

from goalcover.tools.core.errors import BadInput

# `.NAME.gc-PID-RANDOM.tmp`: a file or folder a GoalCover process is writing; PID tells whether it is alive.
_TEMP = re.compile(r"^\..+\.gc-(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")
# This process's temporaries not yet renamed or removed, named before they exist: a Ctrl-C or SIGTERM can land
# between creating one and the `try` that would remove it, so the CLI removes what is left (remove_own_temps).
_OWN: set[Path] = set()


def ordinary_mode() -> int:
    """The permissions a plain `open(path, "w")` would give a new file: 0o666 less the umask (usually 0o644)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def output_path(path: Path) -> Path:
    """`path` made absolute with its folder resolved but its own name kept, so a symlink at the final name
    is seen rather than followed. Raises BadInput when the final name is a symlink (writing there would
    replace or write through the link) or a folder."""
    path = path.expanduser()
    path = path.parent.resolve() / path.name
    if path.is_symlink():
        raise BadInput(f"{path}: is a symbolic link; refusing to write through it (give the real file's name, or remove the link)")
    if path.is_dir():
        raise BadInput(f"{path}: is a directory; give a file name")
    return path


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def sweep_stale_temps(folder: Path) -> list[Path]:
    """Remove the temporary files and folders (`.NAME.gc-PID-RANDOM.tmp`) in `folder` whose writing
    process is gone (killed mid-write); returns what was removed. Live writers' temporaries are kept.
    Errors (a folder that vanished, a permission) are ignored: this is tidying, never a reason to fail."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP.match(entry.name)
        if match is None or _alive(int(match["pid"])):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def temp_name(target: Path) -> Path:
    """A fresh temporary name beside `target` carrying this process's pid (see sweep_stale_temps), recorded
    as this process's own until `forget_temp` (see remove_own_temps)."""
    tmp = target.with_name(f".{target.name}.gc-{os.getpid()}-{secrets.token_hex(4)}.tmp")
    _OWN.add(tmp)
    return tmp


def forget_temp(tmp: Path) -> None:
    """`tmp` was renamed into place or removed: no longer this process's to clean up."""
    _OWN.discard(tmp)


def remove_own_temps() -> list[Path]:
    """Remove the temporary files and folders this process named (temp_name) and still holds: for an
    interrupt, which may land before the writer's own cleanup is in place. Returns what was removed."""
    removed = []
    for tmp in list(_OWN):
        try:
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()
            removed.append(tmp)
        except FileNotFoundError:
            pass
        except OSError:
            continue
        _OWN.discard(tmp)
    return removed


def open_temp(target: Path, mode: int = 0o600) -> tuple[int, Path]:
    """Create a new temporary file beside `target` (its folder made if missing; stale temporaries there
    swept first): (an fd open for writing, its path). O_EXCL|O_NOFOLLOW: never an existing file or link."""
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(target.parent)
    tmp = temp_name(target)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    return fd, tmp


def make_temp_dir(target: Path) -> Path:
    """Create a new temporary folder beside `target` (stale temporaries there swept first); its path."""
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(target.parent)
    tmp = temp_name(target)
    tmp.mkdir(mode=0o700)
    return tmp


def write_atomic(path: Path, data: str | bytes, mode: int | None = None) -> Path:
    """Write `data` (text as UTF-8) to `path` via a temporary file in the same folder and a rename, so
    readers never see half a file; the file gets `mode` (default ordinary permissions, not mkstemp's 0600).
    Returns the path (folder resolved). Raises BadInput when `path` is a folder or a symlink (see output_path)."""
    path = output_path(path)
    fd, tmp = open_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, ordinary_mode() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        forget_temp(tmp)
    return path
