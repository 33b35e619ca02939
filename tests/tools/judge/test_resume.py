"""Kill a real scoring process with SIGKILL mid-run; the rerun finishes without repeating a paid call."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from goalcover.testing import Faults
from tests.support.judges import CONTRACT_PATTERNS, keyword_judge, sample_of
from tests.support.processes import kill_when
from tests.support.workspaces import prepared_contracts

N = 40


def judged_samples(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute("SELECT DISTINCT sample_id FROM judgments")}


def prepared(tmp_path: Path, fake_openai) -> tuple[Path, dict]:
    """A workspace with N contract samples and the contracts goal, judged by the keyword judge: (its
    SQLite path, the environment for a `goalcover` subprocess scoring it)."""
    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    return prepared_contracts(tmp_path, "ws", fake_openai, N)


def test_sigkill_mid_run_then_rerun_repeats_no_successful_call(tmp_path, fake_openai):
    db, env = prepared(tmp_path, fake_openai)
    fake_openai.set_faults(Faults(latency_ms=150))
    proc = subprocess.Popen(
        [sys.executable, "-m", "goalcover", "score", "--concurrency", "4"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    kill_when(proc, lambda: len(judged_samples(db)) >= 8)
    time.sleep(0.5)  # let calls that were in flight at the kill finish on the server
    first = judged_samples(db)
    assert 8 <= len(first) < N
    first_requests = len(fake_openai.requests)

    fake_openai.set_faults(Faults())
    rerun = subprocess.run(
        [sys.executable, "-m", "goalcover", "score", "--json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr
    asked_again = [sample_of(r)[0] for r in fake_openai.requests[first_requests:]]
    # Zero repeated successful calls: nothing judged before the kill was asked for again …
    assert not set(asked_again) & first
    # … each missing sample was asked exactly once, and zero judgments were lost.
    assert sorted(asked_again) == sorted(set(asked_again))
    assert len(asked_again) == N - len(first)
    assert len(judged_samples(db)) == N
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM judgments").fetchone()[0] == N * 5


def test_ctrl_c_keeps_the_calls_in_flight_and_the_rerun_pays_for_no_pair_twice(tmp_path, fake_openai):
    """SIGINT (Ctrl-C) to a real `goalcover score`: it stops taking new work, waits for the calls it already
    sent and saves them, exits 130; every completion the endpoint served is a saved judgment."""
    db, env = prepared(tmp_path, fake_openai)
    fake_openai.set_faults(Faults(latency_ms=600))
    proc = subprocess.Popen(
        [sys.executable, "-m", "goalcover", "score", "--concurrency", "4"], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while len(judged_samples(db)) < 8:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() is not None else ""
            time.sleep(0.02)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "interrupted; run the command again" in proc.stderr.read()
    print(f"SIGINT -> goalcover score exited after {took:.3f} s")
    # Out after the calls in flight (one 600 ms call per worker) and the interpreter's exit, well before the
    # ~5 s the remaining 32 samples would take.
    assert took < 3.0, took
    served = fake_openai.stats()["completions"]
    assert len(judged_samples(db)) == served < N  # nothing the endpoint answered was lost
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status FROM runs ORDER BY id DESC LIMIT 1").fetchone()[0] == "interrupted"

    fake_openai.set_faults(Faults())
    rerun = subprocess.run([sys.executable, "-m", "goalcover", "score", "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert fake_openai.stats()["completions"] == N  # one call per sample in all: none paid twice
