"""A piece of paid work belongs to the workspace, not to the browser tab that started it.

The server keeps one `LiveRun` per workspace folder while a button's work runs (scoring, gaps, synthesis):
its task and its latest progress line. A tab opened later — a reload, a second window of the same user —
finds it here and *watches* it: its own progress message redrawn from the run's line, and Chainlit's stop
button, which cancels the watcher and with it the run (the engine keeps every judgment that arrived). So
"Resume" or "stop" never point at a window that is gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

WATCH_EVERY_S = 0.5  # a watching tab redraws the run's progress this often


@dataclass
class LiveRun:
    """One running piece of work: `task` (cancel it to stop), `what` it does in words ("scoring"; an agent's
    turn names the paid tool it is running), `line`, the latest progress text its own tab drew ("" before
    the first), `reply`, the agent's latest reply its own tab showed ("" for a button's work), so a watching
    tab shows the answer too, and `stopped`, set once it was stopped from any tab."""

    task: asyncio.Task
    what: str
    line: str = ""
    watchers: int = field(default=0)
    stopped: bool = False
    reply: str = ""

    def stop(self) -> None:
        """Stop the run (a "Stop" button in any tab): cancel its task; the engine keeps what arrived."""
        self.stopped = True
        self.task.cancel()


_runs: dict[Path, LiveRun] = {}
# The run the current task belongs to: its progress lines (ui/output.py ProgressLine) mirror their text into it.
current: ContextVar[LiveRun | None] = ContextVar("goalcover_run", default=None)


def start(root: Path, what: str) -> LiveRun:
    """Register the current task as the workspace's run (call from inside it); its progress lines mirror
    into it from now on."""
    run = LiveRun(task=asyncio.current_task(), what=what)  # type: ignore[arg-type]
    _runs[root] = run
    current.set(run)
    return run


def doing(what: str) -> None:
    """Name what the current run does now (an agent's turn that starts scoring becomes "scoring"); no-op
    outside a run."""
    if (run := current.get()) is not None:
        run.what = what


def replied(text: str) -> None:
    """The current run's agent replied `text` in its own tab (ui/turn.py): kept for the tabs watching it;
    no-op outside a run."""
    if (run := current.get()) is not None:
        run.reply = text


def mark_stopped() -> None:
    """The current run was stopped (its own tab's stop button, which cancels the task directly), so tabs
    watching it say "stopped", not "finished"; no-op outside a run."""
    if (run := current.get()) is not None:
        run.stopped = True


def end(root: Path, run: LiveRun) -> None:
    """The run is over (finished, stopped or failed): forget it, unless another replaced it."""
    if _runs.get(root) is run:
        del _runs[root]


@contextmanager
def running(root: Path, what: str) -> Iterator[LiveRun]:
    """`start` … `end` around a block of the current task: the block is the workspace's run."""
    run = start(root, what)
    try:
        yield run
    finally:
        end(root, run)


def live(root: Path) -> LiveRun | None:
    """The workspace's run still going, or None."""
    run = _runs.get(root)
    if run is not None and run.task.done():
        del _runs[root]
        return None
    return run


async def watch(run: LiveRun, draw) -> bool:
    """Redraw `run.line` through `draw(text)` (a coroutine) until the run ends. Cancelling the watcher (the
    stop button in the watching tab) cancels the run and waits for it to save what arrived. True when the
    run was stopped from here."""
    run.watchers += 1
    shown = None
    try:
        while not run.task.done():
            if run.line and run.line != shown:
                shown = run.line
                await draw(shown)
            await asyncio.wait([run.task], timeout=WATCH_EVERY_S)
        if run.line and run.line != shown:
            await draw(run.line)
        return run.stopped
    except asyncio.CancelledError:
        run.stop()
        await asyncio.wait([run.task])  # the run drains its calls in flight and saves them
        return True
    finally:
        run.watchers -= 1
