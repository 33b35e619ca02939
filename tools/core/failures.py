"""Failures of the machine rather than of the user's input, as one clear message: the disk is full, another
process holds SQLite's write lock past the busy timeout. Used by the CLI's error handling (ui/common.py)
and by the chat app, so that neither prints "internal error" for them."""

from __future__ import annotations

import errno
import re
import sqlite3

from goalcover.tools.core.errors import GoalCoverError

DISK_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
# What SQLite (ours, and Chroma's own) and other layers say when a write found no space.
DISK_FULL_WORDS = ("no space left on device", "database or disk is full", "disk quota exceeded")
# Chroma's Rust core (its "Error in compaction: ..." InternalError) shows an I/O error as Rust's io::Error
# does: the OS error's number ("(os error 28)" is ENOSPC, 122 EDQUOT on Linux) or the StorageFull kind's
# text "no storage space" (strings in chromadb_rust_bindings, chromadb 1.5). Any other compaction error
# stays an internal error: only these mean the disk is full.
RUST_DISK_FULL = re.compile(r"\(os error (?:%s)\)|\bno storage space\b" % "|".join(str(e) for e in sorted(DISK_FULL_ERRNOS)))
BUSY_WORDS = ("database is locked", "database table is locked")


class DiskFull(GoalCoverError):
    """A write failed for lack of disk space (ENOSPC/EDQUOT). Exit 1."""


class DatabaseBusy(GoalCoverError):
    """SQLite stayed locked by another process for the whole busy timeout. Exit 1."""


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def explain(exc: BaseException) -> GoalCoverError | None:
    """The clear error `exc` stands for (looking through its causes), or None if it is none of these:
    DiskFull for ENOSPC/EDQUOT, SQLite's "database or disk is full" or Chroma's Rust I/O error for them
    (RUST_DISK_FULL); DatabaseBusy for "database is locked"."""
    for cause in _chain(exc):
        text = str(cause).lower()
        if ((isinstance(cause, OSError) and cause.errno in DISK_FULL_ERRNOS) or any(w in text for w in DISK_FULL_WORDS)
                or RUST_DISK_FULL.search(text)):
            where = f" writing {cause.filename}" if isinstance(cause, OSError) and cause.filename else ""
            return DiskFull(
                f"the disk is full{where}: free some space and run the command again (what this command had not "
                "finished was rolled back; what it had saved is kept)"
            )
        if isinstance(cause, sqlite3.OperationalError) and any(w in text for w in BUSY_WORDS):
            return DatabaseBusy(
                "the workspace's database is locked by another process (a GoalCover command, or a program that "
                "opened goalcover.sqlite): wait for it to finish, or close it, and run the command again"
            )
    return None
