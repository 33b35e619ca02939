"""A real Ray cluster on loopback for tests and benchmarks of the Ray engine: `ray start --head --block`
with 2 CPUs, no dashboard, a private temp folder; stopped by signalling that process and the processes
it started (never `ray stop`, which would end every Ray on the machine). The product never imports it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Cluster:
    """A running test cluster: its GCS address and the process group (the `ray start` pid) it runs in."""

    address: str
    pid: int

    def worker_pids(self, title: str) -> list[int]:
        """The pids of this cluster's processes whose process title holds `title` (Ray names an actor's
        worker `ray::CLASS…`); processes of other clusters on the machine are never matched."""
        return [pid for pid in descendants(self.pid) if title in _cmdline(pid)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendants(root: int) -> list[int]:
    """Every live process below `root` in the process tree (Ray's workers start sessions of their own,
    so a process group does not hold them)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def local_cluster(num_cpus: int = 2, timeout: float = 90.0) -> Iterator[Cluster]:
    """Start a head node and yield it (address "127.0.0.1:PORT"); ends it (and its raylet and workers)
    on exit. Raises RuntimeError when it does not come up within `timeout` seconds."""
    port = free_port()
    # Unix socket paths must stay under ~107 characters: a short folder of its own in /tmp.
    temp = tempfile.mkdtemp(prefix="gcray", dir="/tmp")
    # Token auth off: a ~/.ray/auth_token left by some other Ray would otherwise make the head demand it.
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", "--node-ip-address=127.0.0.1",
         f"--port={port}", f"--num-cpus={num_cpus}", "--num-gpus=0", "--include-dashboard=false",
         "--disable-usage-stats", f"--temp-dir={temp}", f"--ray-client-server-port={free_port()}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"ray start exited with {proc.returncode}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the Ray head did not come up")
            time.sleep(0.2)
        # The GCS listens seconds before the raylet is up, and a driver connecting in between fails.
        raylet_log = Path(temp) / "session_latest" / "logs" / "raylet.out"
        while "Raylet consists of" not in (raylet_log.read_text(errors="replace") if raylet_log.exists() else ""):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Ray head's raylet did not start")
            time.sleep(0.2)
        time.sleep(0.5)
        yield Cluster(address, proc.pid)
    finally:
        stop(proc)
        shutil.rmtree(temp, ignore_errors=True)


def stop(proc: subprocess.Popen) -> None:
    """End `ray start --block` and every process it started (GCS, raylet, workers): SIGTERM, then
    SIGKILL for whatever is left after 5 s. Only this cluster's own processes are signalled."""
    tree = descendants(proc.pid)
    for pid in [proc.pid, *tree]:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() and _alive(pid) for pid in tree):
        time.sleep(0.1)
    for pid in tree + descendants(proc.pid):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=1)
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=5)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
