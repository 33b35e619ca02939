"""One workspace, one writer (tools/core/lock.py): a second writer in another process waits for the first or is
refused with a message naming it; two `goalcover score` at once never both pay; SQLite busy is one clear line."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from goalcover.testing import Faults
from goalcover.tools.core.lock import WorkspaceBusy, writes, writing, writing_async
from goalcover.tools.core.workspace import Workspace
from tests.support.judges import CONTRACT_PATTERNS, keyword_judge
from tests.support.workspaces import prepared_contracts

HOLD = textwrap.dedent(
    """
    import sys, time
    from goalcover.tools.core.lock import writing
    from goalcover.tools.core.workspace import Workspace
    with Workspace.open(sys.argv[1]) as ws, writing(ws, sys.argv[2], wait=0):
        print("held", flush=True)
        sys.stdin.read()  # until the test closes our stdin
    """
)


class Holder:
    """Another process holding the workspace's writer lock as `command` until `release()`."""

    def __init__(self, root: Path, command: str = "ingest") -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLD, str(root), command], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "held"

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)

    def __enter__(self) -> "Holder":
        return self

    def __exit__(self, *exc) -> None:
        self.release()
        if self.proc.poll() is None:
            self.proc.kill()


def test_a_second_writer_is_refused_with_a_message_naming_the_holder(workspace):
    with Holder(workspace.root, "ingest") as holder:
        with pytest.raises(WorkspaceBusy) as refused:
            with writing(workspace, "score", wait=0.3):
                pytest.fail("two writers held the workspace at once")
    message = str(refused.value)
    assert f"pid {holder.proc.pid}" in message and "ingest" in message and "since" in message
    assert "score" in message and str(workspace.root) in message
    with writing(workspace, "score", wait=0):  # free again once the holder ended (the kernel drops its lock)
        pass


def test_a_second_writer_waits_for_the_first_within_the_setting(workspace):
    holder = Holder(workspace.root)
    try:
        started = time.monotonic()
        subprocess.Popen([sys.executable, "-c", "import time, os, sys; time.sleep(0.5); os.kill(int(sys.argv[1]), 15)",
                          str(holder.proc.pid)])
        with writing(workspace, "score", wait=20):
            waited = time.monotonic() - started
    finally:
        holder.release()
    assert 0.3 < waited < 20


def test_the_lock_is_reentrant_in_one_process_and_async_waits_without_blocking_the_loop(workspace):
    @writes("outer")
    def outer(ws):
        with writing(ws, "inner", wait=0):  # nested: the same process already holds it
            return "done"

    assert outer(workspace) == "done"

    async def both():
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.02)

        ticker = asyncio.create_task(tick())
        with pytest.raises(WorkspaceBusy):
            async with writing_async(workspace, "gaps", wait=0.4):
                pass
        ticker.cancel()
        return ticks

    with Holder(workspace.root, "synthesize"):
        assert asyncio.run(both()) >= 5  # the event loop kept running while the writer waited


def test_score_during_an_ingest_in_another_process_is_refused_by_the_cli(tmp_path, monkeypatch):
    """D3: `score` while another process ingests (e.g. `ingest --replace`) does not run against half a
    dataset: it is refused (exit 1) naming the ingest, and pays nothing."""
    from typer.testing import CliRunner

    from goalcover.ui.cli import app

    root = tmp_path / "ws"
    Workspace.open(root).close()
    monkeypatch.setenv("GOALCOVER_LOCK_WAIT", "0")
    # A configured judge (at a port nothing listens on): only the lock can stop this score.
    monkeypatch.setenv("GOALCOVER_MODEL", "some-model")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    with Holder(root, "ingest") as holder:
        result = CliRunner().invoke(app, ["score", "--workspace", str(root)])
        data = tmp_path / "more.jsonl"
        data.write_text('{"instruction": "a", "output": "b"}\n')
        ingest = CliRunner().invoke(app, ["ingest", str(data), "--workspace", str(root)])
    assert result.exit_code == 1, result.output
    assert "busy" in result.output and f"pid {holder.proc.pid}" in result.output and "ingest" in result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert ingest.exit_code == 1 and "busy" in ingest.output  # F11: a second ingest does not slip in either


def test_two_cli_scores_at_once_never_both_pay(tmp_path, fake_openai):
    """D4: two `goalcover score` started together on one workspace: the second waits for the first, then
    finds every pair judged; the endpoint serves each sample once in all."""
    n = 10
    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    db, env = prepared_contracts(tmp_path, "ws", fake_openai, n)
    fake_openai.set_faults(Faults(latency_ms=300))
    env = {**env, "GOALCOVER_LOCK_WAIT": "120"}
    command = [sys.executable, "-m", "goalcover", "score", "--concurrency", "2", "--json"]
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert fake_openai.stats()["completions"] == n  # one call per sample in all, not two
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM judgments").fetchone()[0] == n * 5


def test_sqlite_busy_is_one_clear_line_not_an_internal_error(tmp_path, capsys):
    """D5: another process holding SQLite's write lock past the busy timeout: a clear message, exit 1."""
    import typer

    from goalcover.ui.common import handle_errors

    db = tmp_path / "goalcover.sqlite"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")

    @handle_errors
    def write() -> None:
        conn = sqlite3.connect(db, timeout=0.1, isolation_level=None)
        conn.execute("INSERT INTO t VALUES (1)")

    try:
        with pytest.raises(typer.Exit) as done:
            write()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.value.exit_code == 1
    said = capsys.readouterr().err
    assert "internal error" not in said and "locked by another process" in said

