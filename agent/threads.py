"""Conversation threads, checkpointed in the workspace's own SQLite file.

LangGraph's SqliteSaver creates its tables (`checkpoints`, `writes`) next to the engine's in
`goalcover.sqlite`, so deleting the workspace deletes the conversations too. It gets its own connection:
both connections use WAL, and the busy timeout makes either wait for the other's short write transactions
instead of failing with "database is locked".
"""

from __future__ import annotations

import sqlite3
import uuid

from langgraph.checkpoint.sqlite import SqliteSaver

from goalcover.tools.workspace import DB_NAME, Workspace

LAST_THREAD_KEY = "last_thread"
BUSY_TIMEOUT_S = 30


def open_checkpointer(ws: Workspace) -> SqliteSaver:
    """A SqliteSaver on the workspace's database; close it with `saver.conn.close()`."""
    conn = sqlite3.connect(ws.root / DB_NAME, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    saver = SqliteSaver(conn)
    saver.setup()
    return saver


def new_thread_id() -> str:
    return uuid.uuid4().hex[:12]


def last_thread(ws: Workspace) -> str | None:
    return ws.store.get_meta(LAST_THREAD_KEY)


def remember_thread(ws: Workspace, thread_id: str) -> None:
    ws.store.set_meta(LAST_THREAD_KEY, thread_id)


def thread_config(thread_id: str, recursion_limit: int = 60) -> dict:
    return {"configurable": {"thread_id": thread_id}, "recursion_limit": recursion_limit}
