"""Issue 27 F12: a disk-full error during `ingest --replace` gives the clear message (exit 1), and leaves
nothing that stops the next ingest or `search` — even when the disk is still full while the failed
ingest cleans up after itself."""

from __future__ import annotations

import errno
import sqlite3

from typer.testing import CliRunner

from goalcover.tools.core.store import Store
from goalcover.tools.core.workspace import Workspace
from goalcover.tools.data.index import STAGING, Index
from goalcover.ui.cli import app
from tests.conftest import SFT, head_lines


def test_a_full_disk_during_replace_leaves_nothing_that_stops_the_next_ingest(tmp_path, monkeypatch):
    ws = str(tmp_path / "ws")
    runner = CliRunner()
    first = head_lines(SFT / "contracts_alpaca.jsonl", tmp_path / "contracts.jsonl", 20)
    other = head_lines(SFT / "mbpp_alpaca.jsonl", tmp_path / "mbpp.jsonl", 260)  # two chunks of 256
    other.write_bytes(b"not json\n" + other.read_bytes())  # one rejected line: its log is a temporary until the ingest commits
    assert runner.invoke(app, ["ingest", str(first), "-w", ws]).exit_code == 0

    real_upsert, real_clear = Index.upsert, Store.clear_staging
    calls = {"upsert": 0}

    def upsert(self, ids, vectors, documents, metadatas, name="samples"):
        if name == STAGING:
            calls["upsert"] += 1
            if calls["upsert"] == 2:  # the first chunk is in the staging collection: the disk fills up
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_upsert(self, ids, vectors, documents, metadatas, name=name)

    def clear_staging(self):
        if calls["upsert"] >= 2:  # still full while the failed ingest cleans up
            raise sqlite3.OperationalError("database or disk is full")
        return real_clear(self)

    monkeypatch.setattr(Index, "upsert", upsert)
    monkeypatch.setattr(Store, "clear_staging", clear_staging)
    failed = runner.invoke(app, ["ingest", str(other), "--replace", "--skip-invalid", "-w", ws])
    assert failed.exit_code == 1, failed.output
    assert calls["upsert"] == 2 and "the disk is full" in failed.output and "internal error" not in failed.output
    rejected = tmp_path / "ws" / "rejected"
    assert not rejected.exists() or list(rejected.iterdir()) == [], failed.output  # the failed ingest's rejected log is gone

    monkeypatch.setattr(Index, "upsert", real_upsert)  # space freed
    monkeypatch.setattr(Store, "clear_staging", real_clear)
    with Workspace.open(tmp_path / "ws") as opened:  # the old dataset is intact
        assert opened.store.count_samples() == 20 and opened.index.count() == 20
    again = runner.invoke(app, ["ingest", str(other), "--replace", "--skip-invalid", "--json", "-w", ws])
    assert again.exit_code == 0, again.output
    assert (tmp_path / "ws" / "rejected" / "mbpp.jsonl.rejected.jsonl").is_file()
    found = runner.invoke(app, ["search", "python function", "-k", "2", "--json", "-w", ws])
    assert found.exit_code == 0, found.output
    with Workspace.open(tmp_path / "ws") as opened:
        assert opened.store.count_samples() == opened.index.count() == 260
        assert STAGING not in opened.index.names()
