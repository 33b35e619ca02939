"""The conversations the chat app shows, kept by Chainlit's own data layer.

With a login configured (ui/webauth.py), the app registers Chainlit's `SQLAlchemyDataLayer` on a SQLite
file in the workspace, WORKSPACE/conversations/chat.sqlite: Chainlit then saves every message, tool step
and element as it is sent, lists each user's earlier conversations in its sidebar, and shows a reopened
conversation (a reload of /thread/ID, or a click in that list) as it was. Chainlit does not create the
schema; `ensure_schema` does, with CREATE TABLE IF NOT EXISTS, at every start. The tables follow the schema
Chainlit's documentation gives for this data layer (docs.chainlit.io/data-layers/sqlalchemy), written for
SQLite (UUID, JSONB and TEXT[] columns as TEXT) and with every key Chainlit 2.12's `StepDict` and
`ElementDict` send (`modes`, `autoCollapse`, `icon`, `playerConfig` ...): the data layer inserts all the
keys it is given, and a missing column would make it drop the row with only a logged warning.

Elements (charts, sample texts, download files) are stored by `WorkspaceFiles`, a Chainlit storage client
writing under WORKSPACE/conversations/files/USER_ID/ELEMENT_ID/NAME, and served back at
/goalcover/conversation-files/KEY to the logged-in user whose id the key starts with (and to nobody else).

The agent's memory stays LangGraph's SQLite checkpoint: a conversation's LangGraph thread id *is* its
Chainlit thread id, so nothing maps one to the other and a crash cannot separate them. Without a login
Chainlit keeps no conversation list (it needs a user), so no data layer is set up and one conversation,
the workspace's last, is shared by everyone who opens the page (ui/webchat.py says so in the welcome).
"""

from __future__ import annotations

import mimetypes
import sqlite3
from pathlib import Path
from typing import Any, Callable

from chainlit.data.storage_clients.base import BaseStorageClient

from goalcover.tools.core.files import write_atomic

FOLDER = "conversations"
DB_FILE = "chat.sqlite"
FILES = "files"
ROUTE = "/goalcover/conversation-files"
MIME_SUFFIX = ".mime"  # next to each stored element: the MIME type it was stored with
KEEP_MAX_BYTES = 5_000_000  # elements larger than this are not copied into the conversation (see upload_file)
SERVED_AS_TEXT = ("text/html", "image/svg+xml", "application/xhtml+xml")  # never rendered as a page here

# Chainlit's documented SQLAlchemyDataLayer schema, for SQLite, with Chainlit 2.12's extra step/element keys.
SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    "id" TEXT PRIMARY KEY, "identifier" TEXT NOT NULL UNIQUE, "metadata" TEXT NOT NULL, "createdAt" TEXT);
CREATE TABLE IF NOT EXISTS threads (
    "id" TEXT PRIMARY KEY, "createdAt" TEXT, "name" TEXT, "userId" TEXT, "userIdentifier" TEXT, "tags" TEXT,
    "metadata" TEXT, FOREIGN KEY ("userId") REFERENCES users("id") ON DELETE CASCADE);
CREATE TABLE IF NOT EXISTS steps (
    "id" TEXT PRIMARY KEY, "name" TEXT NOT NULL, "type" TEXT NOT NULL, "threadId" TEXT NOT NULL, "parentId" TEXT,
    "streaming" BOOLEAN NOT NULL, "waitForAnswer" BOOLEAN, "isError" BOOLEAN, "metadata" TEXT, "tags" TEXT,
    "input" TEXT, "output" TEXT, "createdAt" TEXT, "command" TEXT, "modes" TEXT, "start" TEXT, "end" TEXT,
    "generation" TEXT, "showInput" TEXT, "language" TEXT, "indent" INT, "defaultOpen" BOOLEAN,
    "autoCollapse" BOOLEAN, "icon" TEXT, FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE);
CREATE TABLE IF NOT EXISTS elements (
    "id" TEXT PRIMARY KEY, "threadId" TEXT, "type" TEXT, "url" TEXT, "chainlitKey" TEXT, "name" TEXT NOT NULL,
    "display" TEXT, "objectKey" TEXT, "size" TEXT, "page" INT, "language" TEXT, "forId" TEXT, "mime" TEXT,
    "props" TEXT, "autoPlay" BOOLEAN, "playerConfig" TEXT,
    FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE);
CREATE TABLE IF NOT EXISTS feedbacks (
    "id" TEXT PRIMARY KEY, "forId" TEXT NOT NULL, "threadId" TEXT, "value" INT NOT NULL, "comment" TEXT,
    FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE);
CREATE INDEX IF NOT EXISTS steps_thread ON steps("threadId");
CREATE INDEX IF NOT EXISTS elements_thread ON elements("threadId");
CREATE INDEX IF NOT EXISTS threads_user ON threads("userId");
"""


def db_path(base: Path) -> Path:
    """The conversations' SQLite file of the workspace `base` (the server's workspace, all users)."""
    return base / FOLDER / DB_FILE


def ensure_schema(base: Path) -> Path:
    """Create the data layer's tables if missing (idempotent; WAL, so the app's reads never wait on a
    write); returns the database path. Raises sqlite3.Error if the file is not a database."""
    path = db_path(base)
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
    conn.close()
    return path


def _inside(root: Path, key: str) -> Path:
    """`root/key`, refused (ValueError) if the key would leave `root` (`..`, an absolute path)."""
    target = (root / key).resolve()
    if not target.is_relative_to(root.resolve()) or target == root.resolve():
        raise ValueError(f"not a stored file's key: {key!r}")
    return target


class WorkspaceFiles(BaseStorageClient):
    """Chainlit storage client (`BaseStorageClient`) keeping element files under `root` (the workspace's
    conversations/files): written atomically (temporary file, then rename), read back through ROUTE."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def upload_file(self, object_key: str, data: bytes | str, mime: str = "application/octet-stream",
                          overwrite: bool = True, content_disposition: str | None = None) -> dict[str, Any]:
        """Store `data` (str is stored as UTF-8) under `object_key`; returns {"object_key", "url"}. A file
        over KEEP_MAX_BYTES (an uploaded dataset, an export: both stay in the workspace) is not copied:
        its message is restored with the file's name only. Raises ValueError for a key outside the folder."""
        if len(data) > KEEP_MAX_BYTES:
            return {"object_key": None, "url": None}
        target = _inside(self.root, object_key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Owner-only, as mkstemp made them before; pid-tagged temporaries a dead writer's sweep removes.
        write_atomic(target.with_name(target.name + MIME_SUFFIX), mime, mode=0o600)
        write_atomic(target, data if isinstance(data, str) else bytes(data), mode=0o600)
        return {"object_key": object_key, "url": await self.get_read_url(object_key)}

    async def delete_file(self, object_key: str) -> bool:
        """Delete a stored file (and its MIME note); True if it existed."""
        target = _inside(self.root, object_key)
        target.with_name(target.name + MIME_SUFFIX).unlink(missing_ok=True)
        existed = target.is_file()
        target.unlink(missing_ok=True)
        return existed

    async def get_read_url(self, object_key: str) -> str:
        """The same-origin URL the browser reads the file at (only its owner may: `file_response`)."""
        from urllib.parse import quote

        return f"{ROUTE}/{quote(object_key)}"

    async def close(self) -> None:
        """Nothing to close: files are opened per call."""


def data_layer(base: Path, workspace_for: Callable[[str], Path]):
    """Chainlit's SQLAlchemyDataLayer on the workspace's conversations file, elements in WorkspaceFiles;
    deleting a conversation also deletes its LangGraph checkpoints in the workspace of its user
    (`workspace_for(identifier)`), so nothing of a deleted conversation stays behind."""
    from chainlit.data.sql_alchemy import SQLAlchemyDataLayer

    from goalcover.agent.threads import forget_thread

    class Conversations(SQLAlchemyDataLayer):
        async def delete_thread(self, thread_id: str):
            author = await self.get_thread_author(thread_id)
            deleted = await super().delete_thread(thread_id)
            await forget_thread(workspace_for(author), thread_id)
            return deleted

    path = ensure_schema(base)
    return Conversations(conninfo=f"sqlite+aiosqlite:///{path}", storage_provider=WorkspaceFiles(path.parent / FILES))


def owner(base: Path, key: str) -> str | None:
    """The user (identifier) whose conversation holds the element stored under `key`, or None."""
    with sqlite3.connect(db_path(base)) as conn:
        row = conn.execute('SELECT t."userIdentifier" FROM elements e JOIN threads t ON t."id" = e."threadId" '
                           'WHERE e."objectKey" = ?', (key,)).fetchone()
    conn.close()
    return row[0] if row else None


def file_response(base: Path, key: str, user: str | None):
    """The stored element file `key` for the logged-in user `user` (identifier), as a Starlette
    FileResponse, if it belongs to one of their conversations; else a 404 (never saying which)."""
    from starlette.responses import FileResponse, Response

    root = db_path(base).parent / FILES
    try:
        target = _inside(root, key)
    except ValueError:
        target = None
    if not user or target is None or not target.is_file() or owner(base, key) != user:
        return Response(status_code=404)
    note = target.with_name(target.name + MIME_SUFFIX)
    mime = note.read_text().strip() if note.is_file() else (mimetypes.guess_type(target.name)[0] or "application/octet-stream")
    if mime in SERVED_AS_TEXT:
        mime = "text/plain"
    return FileResponse(target, media_type=mime, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private"})


def add_file_route(base: Path) -> None:
    """Serve stored element files at ROUTE on Chainlit's server, ahead of its catch-all page route (a route
    added after it would never be reached). Idempotent."""
    from chainlit.auth import get_current_user
    from chainlit.server import app
    from fastapi import Depends
    from starlette.concurrency import run_in_threadpool

    path = f"{ROUTE}/{{key:path}}"
    if any(getattr(r, "path", None) == path for r in app.router.routes):
        return

    async def conversation_file(key: str, current_user=Depends(get_current_user)):  # noqa: B008 - FastAPI's way
        return await run_in_threadpool(file_response, base, key, getattr(current_user, "identifier", None))

    app.router.add_api_route(path, conversation_file, methods=["GET"], include_in_schema=False)
    app.router.routes.insert(0, app.router.routes.pop())


REOPENED = "Reopened this conversation"


async def reopen(web, thread: dict) -> None:
    """A conversation reopened from the data layer (a reload, or a click in the conversation list): the
    page already shows its messages, steps and charts, but not its buttons (Chainlit does not keep them),
    so this sends the buttons that still apply to the workspace now (replacing the previous reopening's
    message, so reloads do not pile them up), an approval the agent still waits for, what changed since,
    and then watches a run still going (ui/runs.py). `web` is the WebChat, `thread` Chainlit's ThreadDict."""
    import asyncio

    import chainlit as cl

    from goalcover.tools.core.workspace import Workspace
    from goalcover.ui import iterate_views, runs, views
    from goalcover.ui.turn import approval

    for step in thread.get("steps") or []:
        if str(step.get("output") or "").startswith(REOPENED):
            await cl.Message(content="", id=str(step["id"])).remove()

    web.ws = await asyncio.to_thread(Workspace.open, web.root)
    session = await web.agent(quiet=True)
    draft, _ = await web.current_draft()
    pending = (await session.pending())[:1] if session is not None else []
    if not pending:
        acts = await views.next_actions(web.ws, draft=draft)
        await web.out.send(f"{REOPENED}: the steps that apply now." if acts else
                           f"{REOPENED}. Ask on, or upload a dataset.", acts)
    for waiting in pending:
        await approval(web, waiting)
    await iterate_views.since_view(web.out, web.ws)
    if runs.live(web.root) is not None:
        await web.busy()
