"""Killing a real CLI process at a chosen moment (the resume tests)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 120) -> None:
    """SIGKILL `proc` as soon as `ready()` holds (polled every 50 ms) and wait for it to die. Fails the
    test if the process ends on its own first or `ready()` does not hold within `timeout` seconds."""
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, "the process ended before it could be killed"
            assert time.monotonic() < deadline, f"not ready to be killed within {timeout:g} s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
