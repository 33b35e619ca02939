"""A failed or killed ingest leaves the workspace exactly as it was; one killed after its commit is
completed the next time the workspace is opened."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from goalcover.tools.data.ingest import ingest_file
from goalcover.tools.data.index import STAGING, Index
from goalcover.tools.core.store import Store
from goalcover.tools.core.workspace import Workspace
from tests.conftest import SFT, head_lines


def snapshot(root: Path) -> dict:
    """Everything a user can see of the dataset: SQLite rows and the index's ids, texts and metadata."""
    with Workspace.open(root) as ws:
        db = ws.store.db
        got = ws.index.collection().get(include=["documents", "metadatas"])
        return {
            "samples": db.execute("SELECT id, source, position, content_hash, record, raw FROM samples ORDER BY id").fetchall(),
            "sources": db.execute("SELECT path, file_type, shape, position FROM sources ORDER BY path").fetchall(),
            "index": sorted(zip(got["ids"], got["documents"], [sorted(m.items()) for m in got["metadatas"]])),
            "staged": db.execute("SELECT COUNT(*) FROM ingest_staging").fetchone()[0],
        }


@pytest.fixture
def held(tmp_path) -> Path:
    """A workspace holding 40 contract samples."""
    root = tmp_path / "ws"
    with Workspace.open(root) as ws:
        ingest_file(ws, head_lines(SFT / "contracts_alpaca.jsonl", tmp_path / "contracts.jsonl", 40))
    return root


def test_a_failure_after_the_vector_write_leaves_the_workspace_as_it_was(held, tmp_path, monkeypatch):
    before = snapshot(held)
    other = head_lines(SFT / "mbpp_alpaca.jsonl", tmp_path / "mbpp.jsonl", 100)

    def fail(*args, **kwargs):
        raise RuntimeError("injected: the disk is full")

    with Workspace.open(held) as ws:
        real = Store.commit_ingest
        monkeypatch.setattr(Store, "commit_ingest", fail)
        with pytest.raises(RuntimeError, match="injected"):
            ingest_file(ws, other, replace=True)
        assert ws.index.collection(STAGING).count() == 0 or STAGING not in ws.index.names()
        monkeypatch.setattr(Store, "commit_ingest", real)
    assert snapshot(held) == before
    # Nothing is left that makes the next ingest refuse ("holds another dataset") or mix data.
    with Workspace.open(held) as ws:
        assert ingest_file(ws, other, replace=True).new == 100
        assert ws.index.count() == ws.store.count_samples() == 100


def test_a_failure_in_the_index_step_is_completed_on_the_next_open(held, tmp_path, monkeypatch):
    more = head_lines(SFT / "contracts_alpaca.jsonl", tmp_path / "contracts.jsonl", 60)  # 20 more samples
    real_move = Index.move
    monkeypatch.setattr(Index, "move", lambda self, *a, **k: (_ for _ in ()).throw(RuntimeError("injected: killed mid-move")))
    with Workspace.open(held) as ws:
        with pytest.raises(RuntimeError, match="injected"):
            ingest_file(ws, more)
        assert ws.store.count_samples() == 60  # committed in SQLite; the index is behind
    monkeypatch.setattr(Index, "move", real_move)
    after = snapshot(held)  # opening the index completes the move
    assert len(after["index"]) == len(after["samples"]) == 60 and after["staged"] == 0


def test_sigkill_mid_ingest_leaves_the_workspace_as_it_was(held, tmp_path):
    before = snapshot(held)
    other = head_lines(SFT / "mbpp_alpaca.jsonl", tmp_path / "mbpp.jsonl", 974)
    env = {**os.environ, "GOALCOVER_WORKSPACE": str(held), "GOALCOVER_EMBED_BATCH_SIZE": "32"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "goalcover.ui.cli", "ingest", str(other), "--replace"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    db = held / "goalcover.sqlite"
    deadline = time.monotonic() + 240
    staged = 0
    while time.monotonic() < deadline and proc.poll() is None:
        with sqlite3.connect(db, timeout=30) as conn:
            staged = conn.execute("SELECT COUNT(*) FROM ingest_staging").fetchone()[0]
        if staged >= 256:  # a chunk's vectors are written and its rows staged: kill it now
            break
        time.sleep(0.2)
    assert proc.poll() is None, f"the ingest ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert staged >= 256
    after = snapshot(held)
    assert {k: v for k, v in after.items() if k != "staged"} == {k: v for k, v in before.items() if k != "staged"}
    # The next ingest clears what the killed one left and goes through.
    with Workspace.open(held) as ws:
        result = ingest_file(ws, head_lines(other, tmp_path / "mbpp-small.jsonl", 50), replace=True)
        assert result.new == 50 and ws.index.count() == 50 and STAGING not in ws.index.names()


def test_a_kill_after_the_index_step_of_a_replace_keeps_the_new_data(held, tmp_path, monkeypatch):
    """After --replace the staging collection is renamed into place; dying before the pending mark is
    cleared must not make the next open wipe what was renamed."""
    other = head_lines(SFT / "mbpp_alpaca.jsonl", tmp_path / "mbpp.jsonl", 30)
    real_finish = Store.finish_ingest
    monkeypatch.setattr(Store, "finish_ingest", lambda self: (_ for _ in ()).throw(RuntimeError("injected: killed")))
    with Workspace.open(held) as ws:
        with pytest.raises(RuntimeError, match="injected"):
            ingest_file(ws, other, replace=True)
    monkeypatch.setattr(Store, "finish_ingest", real_finish)
    after = snapshot(held)
    assert len(after["samples"]) == len(after["index"]) == 30 and after["staged"] == 0
    assert {row[0] for row in after["samples"]} == {row[0] for row in after["index"]}
