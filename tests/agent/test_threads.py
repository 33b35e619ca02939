"""Conversations are checkpointed in the workspace's own SQLite file, next to the engine's tables."""

from __future__ import annotations

import sqlite3
import threading
import time

from goalcover.testing import Reply, on
from tests.agent.conftest import agent_turn, drain, reply_text


async def test_checkpoints_live_in_the_workspace_database(fake_openai, open_ws, session_factory):
    fake_openai.rules.append(on(agent_turn, Reply.text("Hi.")))
    ws = open_ws()
    session = await session_factory(ws, "t-db")
    await drain(session.send("hello"))
    db = sqlite3.connect(ws.root / "goalcover.sqlite")
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"checkpoints", "writes", "meta", "samples", "judgments"} <= tables
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT COUNT(*) FROM checkpoints WHERE thread_id = 't-db'").fetchone()[0] > 0
    assert ws.store.get_meta("last_thread") == "t-db"


async def test_engine_writes_and_checkpoints_share_the_file(fake_openai, open_ws, session_factory):
    fake_openai.rules.append(on(agent_turn, Reply.text("Hi.")))
    ws = open_ws()
    session = await session_factory(ws)
    errors: list[Exception] = []
    stop = threading.Event()

    def engine_writer():
        n = 0
        while not stop.is_set():
            try:
                with ws.store.transaction() as conn:  # BEGIN IMMEDIATE, like the engine's judgment writes
                    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('load', ?)", (str(n),))
                    time.sleep(0.005)
                n += 1
                time.sleep(0.005)  # judgments arrive with gaps; a writer that never lets go would starve anyone
            except Exception as exc:  # pragma: no cover - what the test guards against
                errors.append(exc)
                return

    writer = threading.Thread(target=engine_writer)
    writer.start()
    try:
        for n in range(5):
            assert reply_text(await drain(session.send(f"message {n}"))) == "Hi."
    finally:
        stop.set()
        writer.join()
    assert errors == []
    assert len((await session.messages())) == 10


async def test_a_long_engine_transaction_makes_the_checkpointer_wait_not_fail(fake_openai, open_ws, session_factory):
    fake_openai.rules.append(on(agent_turn, Reply.text("Hi.")))
    ws = open_ws()
    session = await session_factory(ws)
    held = threading.Event()

    def hold_lock():
        with ws.store.transaction():
            held.set()
            time.sleep(1.0)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    held.wait()
    started = time.monotonic()
    assert reply_text(await drain(session.send("hello"))) == "Hi."
    holder.join()
    assert time.monotonic() - started >= 0.5  # it waited for the lock instead of raising "database is locked"


async def test_the_graph_runs_on_the_workspace_checkpointer_with_astream(fake_openai, contracts_ws):
    """What both UIs do: the compiled graph on `open_checkpointer` (AsyncSqliteSaver, same file), astream,
    an interrupt before the paid step, then a resume that declines it."""
    from langchain_core.messages import HumanMessage
    from langgraph.types import Command

    from goalcover.agent.graph import build_graph
    from goalcover.agent.threads import open_checkpointer
    from goalcover.testing import sequence
    from tests.agent.conftest import N

    fake_openai.rules.append(
        sequence([Reply.tool_calls([{"name": "run_scoring", "arguments": {}}]), Reply.text("Not scoring.")], when=agent_turn)
    )
    ws = contracts_ws()
    config = {"configurable": {"thread_id": "async"}}
    saver = await open_checkpointer(ws)
    try:
        graph = build_graph(ws, checkpointer=saver)
        seen = [c async for c in graph.astream({"messages": [HumanMessage("score")]}, config, stream_mode=["updates", "custom"])]
        interrupts = [i for mode, chunk in seen if mode == "updates" for i in chunk.get("__interrupt__", ())]
        assert interrupts and interrupts[0].value["plan"]["calls"] == N
        final = await graph.ainvoke(Command(resume=False), config)
    finally:
        await saver.conn.close()
    assert final["messages"][-1].content == "Not scoring." and final["run"]["status"] == "declined"
