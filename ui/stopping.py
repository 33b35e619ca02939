"""The stop button for work that runs in threads: an agent turn (LangGraph runs each node in a worker
thread of its own) or an ingest.

Stopping works like Ctrl-C in the CLI, which the engine is built for ("interrupt any time; rerun to
continue"): `StopRequested`, a KeyboardInterrupt, is raised inside the thread that runs the current graph
node. Scoring's asyncio run then cancels its calls, closes its client and records the run as interrupted;
every judgment that arrived is already committed, so the next run pays only for what is missing. The
exception cannot be caught by the tools' `except Exception` guards, so it ends the turn, and LangGraph's
checkpoint stays at the last completed step.

Where the work calls back into us (ingest's progress), `check()` stops it between batches instead.
A thread waiting inside C code (a socket read) sees the exception when the call returns, e.g. with the
next judge reply.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler


class StopRequested(KeyboardInterrupt):
    """The user pressed stop."""


def raise_in_thread(ident: int, exc: type[BaseException]) -> bool:
    """Raise `exc` in the thread `ident` the next time it runs Python code; False if it is gone."""
    return ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc)) == 1


class Stopper(BaseCallbackHandler):
    """A LangChain callback handler (add it to the graph's run config) that knows which threads are
    running graph nodes, so `stop()` can interrupt them; a node that starts after `stop()` fails at once."""

    run_inline = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nodes: dict[UUID, int] = {}  # run id of a running node (or a chain inside it) -> its thread
        self._interrupted: set[int] = set()  # threads already told: a second exception would cut short their cleanup
        self._requested = threading.Event()

    def reset(self) -> None:
        """Before each turn: a stop pressed during an earlier turn does not stop this one."""
        with self._lock:
            self._requested.clear()
            self._interrupted.clear()

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    def check(self) -> None:
        if self._requested.is_set():
            raise StopRequested()

    def stop(self) -> None:
        with self._lock:
            self._requested.set()
            for ident in set(self._nodes.values()) - self._interrupted:
                raise_in_thread(ident, StopRequested)
                self._interrupted.add(ident)

    # --- callbacks, called in the thread that runs the chain ------------------------------------------
    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, metadata: dict | None = None, **kwargs: Any) -> None:
        if not (metadata or {}).get("langgraph_node"):
            return
        self.check()
        with self._lock:
            self._nodes[run_id] = threading.get_ident()

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            self._nodes.pop(run_id, None)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            self._nodes.pop(run_id, None)
