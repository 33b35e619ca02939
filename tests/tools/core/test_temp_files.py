"""Issue 27 D6: a kill during export leaves no temporary file for ever. Temporaries carry the writer's
pid; a dead writer's are removed by the next write into that folder; SIGTERM in the CLI runs the same
cleanup as Ctrl-C and exits 130."""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from goalcover.tools.core.files import sweep_stale_temps, temp_name, write_atomic
from goalcover.tools.core.workspace import Workspace
from goalcover.tools.data.ingest import ingest_file



def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_dead_writers_temporaries_are_swept_by_the_next_write(tmp_path):
    dead = dead_pid()
    stale = tmp_path / f".clean.jsonl.gc-{dead}-0123abcd.tmp"
    stale.write_text("half an export")
    stale_dir = tmp_path / f".shards.gc-{dead}-89abcdef.tmp"
    (stale_dir / "sub").mkdir(parents=True)
    live = temp_name(tmp_path / "other.jsonl")  # this process's own: kept
    live.write_text("being written")
    users = tmp_path / ".notes.tmp"  # not ours: kept
    users.write_text("mine")
    write_atomic(tmp_path / "report.md", "# report\n")
    assert not stale.exists() and not stale_dir.exists()
    assert live.exists() and users.exists() and (tmp_path / "report.md").read_text() == "# report\n"
    assert sweep_stale_temps(tmp_path / "missing") == []


def big_gzip_dataset(path: Path, n: int = 40, words: int = 40_000) -> Path:
    """n samples of ~250 KB of varied words each, gzip-compressed (so the export recompresses ~10 MB: slow
    enough to be caught mid-write)."""
    rng = random.Random(0)
    vocab = [f"w{rng.getrandbits(40):x}" for _ in range(5000)]
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for i in range(n):
            text = " ".join(rng.choices(vocab, k=words))
            f.write(json.dumps({"instruction": f"Summarise document {i}.", "input": text, "output": text[:2000]}) + "\n")
    return path


def export_stopped_mid_write(target: Path, env: dict) -> tuple[bool, int, str]:
    """Run `goalcover export -o target`, freeze it (SIGSTOP) as soon as the export's own temporary file is
    there, send SIGTERM and let it go on: (caught mid-write, exit code, stderr)."""
    own = re.compile(r"^\." + re.escape(target.name) + r"\.gc-\d+-[0-9a-f]{8}\.tmp$")
    proc = subprocess.Popen([sys.executable, "-m", "goalcover.ui.cli", "export", "-o", str(target)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    caught = False
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if any(own.match(name) for name in os.listdir(target.parent)):
            os.kill(proc.pid, signal.SIGSTOP)  # frozen mid-write: the temporary is there
            caught = any(own.match(name) for name in os.listdir(target.parent))
            os.kill(proc.pid, signal.SIGTERM)
            os.kill(proc.pid, signal.SIGCONT)
            break
        time.sleep(0.0005)
    stderr = proc.communicate(timeout=60)[1].decode()
    return caught, proc.returncode, stderr


def test_sigterm_mid_export_leaves_no_temporary_and_the_old_file(tmp_path):
    data = big_gzip_dataset(tmp_path / "big.jsonl.gz")
    with Workspace.open(tmp_path / "ws") as ws:
        ingest_file(ws, data)
    out = tmp_path / "out"
    out.mkdir()
    target = out / "big.jsonl.gz"
    env = {**os.environ, "GOALCOVER_WORKSPACE": str(tmp_path / "ws")}
    for _ in range(3):  # a busy machine may let one export finish before the poll sees its temporary
        target.write_bytes(b"the old complete export")
        for name in os.listdir(out):
            if name != target.name:
                os.unlink(out / name)
        caught, code, stderr = export_stopped_mid_write(target, env)
        if caught:
            break
    assert caught, f"the export ended before it could be stopped mid-write: {stderr[-500:]}"
    assert code == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert [n for n in os.listdir(out) if n.endswith(".tmp")] == []
    # Never half a file: the old export, or (when the signal landed as the rename was under way) the whole new one.
    if target.read_bytes() != b"the old complete export":
        with gzip.open(target, "rt", encoding="utf-8") as f:
            assert sum(1 for _ in f) == 40


def test_an_interrupt_before_the_writers_cleanup_is_in_place_leaves_no_temporary(tmp_path, monkeypatch):
    """The signal can land right after the temporary is created, before the `try` that would remove it
    (CI caught one: SIGSTOP just after the file appeared). The CLI's interrupt path removes it."""
    from typer.testing import CliRunner

    import goalcover.tools.data.export as export_module
    from goalcover.tools.core import files
    from goalcover.ui.cli import app

    data = tmp_path / "small.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) + "\n" for i in range(5)))
    with Workspace.open(tmp_path / "ws") as ws:
        ingest_file(ws, data)
    real = export_module.open_temp

    def created_then_interrupted(target):
        real(target)  # the temporary exists now; its writer has not yet reached its `try`
        raise KeyboardInterrupt

    monkeypatch.setattr(export_module, "open_temp", created_then_interrupted)
    out = tmp_path / "out"
    done = CliRunner().invoke(app, ["export", "-o", str(out / "clean.jsonl"), "-w", str(tmp_path / "ws")])
    assert done.exit_code == 130 and "interrupted" in done.output, done.output
    assert os.listdir(out) == [] and not files._OWN
