"""Conversation threads, checkpointed in the workspace's own SQLite file.

LangGraph's AsyncSqliteSaver (the async twin of SqliteSaver: same tables, same file) creates its tables (`checkpoints`, `writes`) next to the engine's in
`goalcover.sqlite`, so deleting the workspace deletes the conversations too. It gets its own connection:
both connections use WAL, and the busy timeout makes either wait for the other's short write transactions
instead of failing with "database is locked".
"""

from __future__ import annotations

import uuid
from pathlib import Path

import aiosqlite
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from goalcover.tools.core.store import LAST_THREAD_KEY
from goalcover.tools.core.workspace import DB_NAME, Workspace

BUSY_TIMEOUT_S = 30


async def open_checkpointer(ws: Workspace | Path) -> AsyncSqliteSaver:
    """An AsyncSqliteSaver on the database of the workspace `ws` (or of the workspace folder), set up; close
    it with `await saver.conn.close()` on the same event loop."""
    root = ws if isinstance(ws, Path) else ws.root
    # Autocommit: the saver writes with one `await` per statement and commits with another, and the engine
    # writes to the same file synchronously on the event loop's thread. With an implicit transaction left
    # open across an await, an engine write would wait (on the loop's thread) for a commit that needs the
    # loop: "database is locked" after the busy timeout. One statement, one transaction, no such wait.
    conn = await aiosqlite.connect(root / DB_NAME, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        await conn.execute("PRAGMA journal_mode=WAL")
        saver = AsyncSqliteSaver(conn)
        await saver.setup()
    except BaseException:
        await conn.close()
        raise
    return saver


async def forget_thread(root: Path, thread_id: str) -> None:
    """Delete a conversation's checkpoints and pending writes from the workspace folder `root` (the chat
    app's "delete conversation"); nothing happens when the workspace has no database yet."""
    if not (root / DB_NAME).is_file():
        return
    saver = await open_checkpointer(root)
    try:
        await saver.adelete_thread(thread_id)
    finally:
        await saver.conn.close()


def new_thread_id() -> str:
    """A fresh thread id: 12 hex characters."""
    return uuid.uuid4().hex[:12]


def last_thread(ws: Workspace) -> str | None:
    """The id of the workspace's last conversation, or None."""
    return ws.store.get_meta(LAST_THREAD_KEY)


def remember_thread(ws: Workspace, thread_id: str) -> None:
    """Make `thread_id` the conversation a plain `goalcover chat` (or a reopened page) continues."""
    ws.store.set_meta(LAST_THREAD_KEY, thread_id)


def thread_config(thread_id: str, recursion_limit: int = 60) -> dict:
    """The LangGraph run config for one thread."""
    return {"configurable": {"thread_id": thread_id}, "recursion_limit": recursion_limit}
