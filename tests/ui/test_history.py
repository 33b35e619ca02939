"""The kept conversations' storage (ui/history.py), without a browser: the schema Chainlit's data layer
writes into, element files kept in the workspace, and served only to the user whose conversation holds them."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from goalcover.ui import history


def test_element_files_stay_in_the_workspace_and_go_only_to_their_owner(tmp_path):
    db = history.ensure_schema(tmp_path)
    history.ensure_schema(tmp_path)  # idempotent, as at every start
    store = history.WorkspaceFiles(db.parent / history.FILES)
    stored = asyncio.run(store.upload_file("u1/e1/coverage", '{"data": []}', mime="application/json"))
    assert stored["url"] == f"{history.ROUTE}/u1/e1/coverage"
    assert asyncio.run(store.upload_file("u1/e2/big.jsonl", b"x" * (history.KEEP_MAX_BYTES + 1)))["url"] is None
    assert not (db.parent / history.FILES / "u1" / "e2").exists()
    with pytest.raises(ValueError):
        asyncio.run(store.upload_file("../escape", b"x"))
    with sqlite3.connect(db) as conn:
        conn.execute("""INSERT INTO threads ("id", "userIdentifier") VALUES ('t1', 'alice')""")
        conn.execute("""INSERT INTO elements ("id", "threadId", "name", "objectKey") VALUES ('e1', 't1', 'coverage', 'u1/e1/coverage')""")
    conn.close()
    ok = history.file_response(tmp_path, "u1/e1/coverage", "alice")
    assert ok.status_code == 200 and ok.media_type == "application/json"
    for key, user in (("u1/e1/coverage", "bob"), ("u1/e1/coverage", None), ("../conversations/chat.sqlite", "alice"), ("u1/e9/x", "alice")):
        assert history.file_response(tmp_path, key, user).status_code == 404, (key, user)
    assert asyncio.run(store.delete_file("u1/e1/coverage")) and not (db.parent / history.FILES / "u1" / "e1" / "coverage").exists()


def test_deleting_a_conversation_deletes_its_agent_checkpoints(tmp_path):
    """The sidebar's delete goes through the data layer; the conversation's LangGraph checkpoints in its
    user's workspace go with it, and another conversation's stay."""
    from langgraph.checkpoint.base import empty_checkpoint

    from goalcover.agent.threads import open_checkpointer, thread_config

    server, alice = tmp_path / "server", tmp_path / "alice"
    alice.mkdir()

    async def scenario():
        saver = await open_checkpointer(alice)
        try:
            for thread in ("t-deleted", "t-kept"):
                config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
                await saver.aput(config, empty_checkpoint(), {}, {})
        finally:
            await saver.conn.close()
        layer = history.data_layer(server, lambda name: tmp_path / name)
        await layer.execute_sql("""INSERT INTO threads ("id", "userIdentifier") VALUES ('t-deleted', 'alice')""", {})
        await layer.delete_thread("t-deleted")
        saver = await open_checkpointer(alice)
        try:
            return [await saver.aget_tuple(thread_config(t)) is not None for t in ("t-deleted", "t-kept")]
        finally:
            await saver.conn.close()

    assert asyncio.run(scenario()) == [False, True]
    with sqlite3.connect(history.db_path(server)) as conn:
        assert conn.execute("SELECT count(*) FROM threads").fetchone()[0] == 0
    conn.close()
