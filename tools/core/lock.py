"""One workspace, one writer: an OS file lock on `WORKSPACE/goalcover.lock`, taken by every command that
changes the workspace (ingest, score, gaps, synthesis, review's accept/reject, export, pool fills), in the
CLI, the agent and the chat app alike.

The lock is `filelock.FileLock` (flock(2) on Unix): the kernel drops it when its process dies, so a killed
command never leaves a stale lock. Beside it, `goalcover.lock.json` names the holder (pid, command, host,
since) so that a refused writer can say who holds the workspace. Within one process the lock is reentrant
(a locked engine function may call another), shared by the process's threads: the chat app already runs
one piece of work at a time per workspace (ui/webchat.py), and this lock adds the other processes.

A second writer waits up to `GOALCOVER_LOCK_WAIT` seconds (default 10) for the holder to finish, then is
refused with `WorkspaceBusy` (exit 1), which names the holder. Readers (search, report, info) take no lock:
SQLite's WAL lets them read while a writer writes.

Use `writing(ws, "score")` as a context manager, or `@writes("score")` on a function whose first argument is
the Workspace (sync or async; the async form waits without blocking the event loop).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import os
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, TypeVar

from filelock import FileLock, Timeout

from goalcover.tools.core.errors import GoalCoverError

LOCK_NAME = "goalcover.lock"
HOLDER_NAME = "goalcover.lock.json"
POLL_S = 0.1

F = TypeVar("F", bound=Callable[..., Any])


class WorkspaceBusy(GoalCoverError):
    """Another process is changing this workspace; the message names it (pid, command, host, since). Exit 1."""


class _Held:
    """This process's hold on one workspace: the file lock, how many nested holds, and what holds it."""

    def __init__(self, root: Path) -> None:
        self.lock = FileLock(str(root / LOCK_NAME), thread_local=False)
        self.depth = 0
        self.guard = threading.Lock()


_held: dict[Path, _Held] = {}
_registry_guard = threading.Lock()


def _entry(root: Path) -> _Held:
    root = root.resolve()
    with _registry_guard:
        if root not in _held:
            _held[root] = _Held(root)
        return _held[root]


def holder(root: Path) -> dict[str, Any] | None:
    """What `goalcover.lock.json` says holds the workspace at `root` ({pid, command, host, since}), or None.
    Only meaningful while the lock is held: the file stays behind after its holder ends."""
    try:
        return json.loads((root / HOLDER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def describe_holder(root: Path) -> str:
    """One phrase naming the holder, e.g. "pid 4242 (goalcover score) on host-1 since 09:12:03 UTC"."""
    info = holder(root)
    if not info:
        return "another process"
    since = str(info.get("since", "?"))
    return f"pid {info.get('pid', '?')} ({info.get('command', '?')}) on {info.get('host', '?')} since {since}"


def _command_line(command: str) -> str:
    argv = [Path(sys.argv[0]).name, *sys.argv[1:3]] if sys.argv and sys.argv[0] else []
    shown = " ".join(a for a in argv if a) or "python"
    return f"{command}: {shown}"[:200]


def _write_holder(root: Path, command: str) -> None:
    info = {
        "pid": os.getpid(),
        "command": _command_line(command),
        "host": socket.gethostname(),
        "since": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }
    try:
        tmp = root / f".{HOLDER_NAME}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(info), encoding="utf-8")
        os.replace(tmp, root / HOLDER_NAME)
    except OSError:  # the holder note is a courtesy (a full disk must not stop the lock itself)
        pass


def _refusal(root: Path, command: str, waited: float) -> WorkspaceBusy:
    return WorkspaceBusy(
        f"the workspace {root} is busy: {describe_holder(root)} is changing it, so `{command}` did not start "
        f"(waited {waited:g} s; GOALCOVER_LOCK_WAIT sets how long). Run it again when that has finished."
    )


def _try_take(entry: _Held, root: Path, command: str) -> bool:
    """Take the hold without waiting (nested holds in this process always succeed)."""
    with entry.guard:
        if entry.depth:
            entry.depth += 1
            return True
        try:
            entry.lock.acquire(timeout=0)
        except Timeout:
            return False
        entry.depth = 1
        _write_holder(root, command)
        return True


def _release(entry: _Held) -> None:
    with entry.guard:
        entry.depth -= 1
        if entry.depth == 0:
            entry.lock.release()


def _wait_s(ws, wait: float | None) -> float:
    return float(ws.settings.lock_wait if wait is None else wait)


@contextmanager
def writing(ws, command: str, wait: float | None = None) -> Iterator[None]:
    """Hold the workspace's writer lock for the block. Waits up to `wait` seconds (default the setting
    `lock_wait`, GOALCOVER_LOCK_WAIT) for another process to let go, then raises WorkspaceBusy naming it.
    Reentrant within this process. `command` (e.g. "score") is what the holder note says is running."""
    root = ws.root
    entry = _entry(root)
    limit = _wait_s(ws, wait)
    deadline = time.monotonic() + limit
    while not _try_take(entry, root, command):
        if time.monotonic() >= deadline:
            raise _refusal(root, command, limit)
        time.sleep(POLL_S)
    try:
        yield
    finally:
        _release(entry)


@asynccontextmanager
async def writing_async(ws, command: str, wait: float | None = None) -> AsyncIterator[None]:
    """`writing` for coroutines: waits with asyncio.sleep, so the event loop (the chat app, the agent)
    keeps serving while it waits."""
    root = ws.root
    entry = _entry(root)
    limit = _wait_s(ws, wait)
    deadline = time.monotonic() + limit
    while not _try_take(entry, root, command):
        if time.monotonic() >= deadline:
            raise _refusal(root, command, limit)
        await asyncio.sleep(POLL_S)
    try:
        yield
    finally:
        _release(entry)


def writes(command: str) -> Callable[[F], F]:
    """Decorator: run the function (sync or async; its first argument the Workspace) holding `writing(ws,
    command)`. For the engine's writers: ingest, score, gaps, synthesis, export, pool fills."""

    def decorate(function: F) -> F:
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def async_wrapper(ws, *args, **kwargs):
                async with writing_async(ws, command):
                    return await function(ws, *args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(function)
        def wrapper(ws, *args, **kwargs):
            with writing(ws, command):
                return function(ws, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def held_here(root: Path) -> bool:
    """Whether this process holds the workspace's writer lock now."""
    entry = _held.get(root.resolve())
    return bool(entry and entry.depth)


@contextmanager
def try_writing(ws, command: str) -> Iterator[bool]:
    """Context manager yielding True while holding the lock if it was free (no wait), else False at once;
    for optional upkeep (completing a killed ingest) that the writer holding the lock will do anyway."""
    entry = _entry(ws.root)
    if not _try_take(entry, ws.root, command):
        yield False
        return
    try:
        yield True
    finally:
        _release(entry)
