"""Closing a workspace while worker threads still read from it (a Ctrl-C in `goalcover chat` cancels the
wait for a thread, not the thread): the close must never pull a connection out from under a statement.
Before the fix this script died of SIGSEGV within a second, every run."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys, threading, time
    from pathlib import Path
    from goalcover.tools.core.store import Store

    store = Store(Path(sys.argv[1]) / "state.db")
    store.set_meta("x", 1)
    stop, reads = threading.Event(), []

    def reader():
        while not stop.is_set():
            rows = store.db.execute("SELECT key, value FROM meta WHERE key = ? ORDER BY key LIMIT ?", ("x", 5))
            reads.append(len(list(rows)))

    workers = [threading.Thread(target=reader) for _ in range(2)]
    for worker in workers:
        worker.start()
    end = time.monotonic() + 1.0
    while time.monotonic() < end:  # close again and again while the workers run statements
        store.close()
        time.sleep(0.0005)
    stop.set()
    for worker in workers:
        worker.join()
    assert reads and set(reads) == {1}, set(reads)  # every read saw the row: none was cut short
    print("ok")
    """
)


def test_closing_while_other_threads_run_statements_neither_crashes_nor_cuts_them_short(tmp_path):
    done = subprocess.run([sys.executable, "-X", "faulthandler", "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", (done.returncode, done.stderr[-2000:])
