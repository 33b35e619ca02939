"""Issue 27 F12/D5: machine failures become one clear message (tools/core/failures.explain), and only
when they are what they say: Chroma's compaction error is "the disk is full" only when ENOSPC is in it."""

from __future__ import annotations

import errno
import sqlite3

import pytest
from chromadb.errors import InternalError

from goalcover.tools.core.failures import DatabaseBusy, DiskFull, explain


@pytest.mark.parametrize("text", [
    # Rust's io::Error for an OS error, and for its StorageFull kind, inside Chroma's compaction error
    "Error executing plan: Error in compaction: Failed to apply logs to the hnsw segment writer: No space left on device (os error 28)",
    "Error in compaction: Failed to apply logs to the metadata segment: no storage space",
    "Error in compaction: Failed to apply logs to the hnsw segment writer: (os error 28)",
    "Error in compaction: Failed to apply logs to the hnsw segment writer: Disk quota exceeded (os error 122)",
    "Error in compaction: error returned from database: (code: 13) database or disk is full",
])
def test_chromas_disk_full_compaction_errors_read_as_disk_full(text):
    try:
        try:
            raise InternalError(text)
        except InternalError as exc:
            raise RuntimeError("upsert failed") from exc
    except RuntimeError as exc:
        assert isinstance(explain(exc), DiskFull)


@pytest.mark.parametrize("text", [
    "Error in compaction: Failed to apply logs to the hnsw segment writer",
    "Error in compaction: Failed to apply logs to the metadata segment: Error reading from metadata segment reader",
    "Error executing plan: Error in compaction: Error sending message to compactor",
    "port 28 is closed (os error 111)",
])
def test_other_compaction_errors_stay_internal(text):
    assert explain(InternalError(text)) is None


def test_oserror_and_sqlite_texts():
    full = explain(OSError(errno.ENOSPC, "No space left on device", "/data/x.tmp"))
    assert isinstance(full, DiskFull) and "/data/x.tmp" in str(full) and full.exit_code == 1
    assert isinstance(explain(sqlite3.OperationalError("database is locked")), DatabaseBusy)
    assert explain(ValueError("bad value")) is None
