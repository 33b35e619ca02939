"""Fixtures for the agent: workspaces pointed at the fake endpoint, scripted agent turns, the contracts data."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from goalcover.testing import ChatRequest
from goalcover.tools.core.workspace import Workspace
from tests.conftest import SFT, head_lines

GOAL_FILE = Path(__file__).resolve().parents[2] / "evals" / "goals" / "contracts.yaml"
N = 20


def agent_turn(req: ChatRequest) -> bool:
    """A request of the agent's conversation (tools offered, none forced): the probe and the engine's
    JSON calls are not."""
    return bool(req.tools) and req.forced_tool is None


def tool_payloads(req: ChatRequest) -> list[dict]:
    """The JSON data of every tool result in the request (error results are skipped)."""
    found = []
    for text in req.tool_results:
        match = re.search(r"<data>\n(\{.*?\})(?:\n<sample|\n</data>)", text, re.DOTALL)
        if match:
            found.append(json.loads(match.group(1)))
    return found


@pytest.fixture
def open_ws(tmp_path, fake_openai):
    opened: list[Workspace] = []

    def _open(name: str = "ws", **overrides) -> Workspace:
        ws = Workspace.open(tmp_path / name, model="fake-model", base_url=fake_openai.base_url, api_key="test", **overrides)
        opened.append(ws)
        return ws

    yield _open
    for ws in opened:
        ws.close()


@pytest.fixture(scope="session")
def contracts_template(tmp_path_factory) -> Path:
    """The first N contracts records, ingested once: embedding them is the slow part, copying is not."""
    from goalcover.tools.data.ingest import ingest_file

    root = tmp_path_factory.mktemp("contracts")
    data = head_lines(SFT / "contracts_alpaca.jsonl", root / "contracts.jsonl", N)
    with pytest.MonkeyPatch.context() as env:
        env.delenv("GOALCOVER_CHROMA_URL", raising=False)
        with Workspace.open(root / "ws") as ws:
            ingest_file(ws, data)
    return root / "ws"


@pytest.fixture
def contracts_ws(contracts_template, tmp_path, open_ws):
    """A workspace holding the contracts sample and the contracts goal (evals/goals/contracts.yaml)."""
    from goalcover.tools.core.goal import load_goal_file, save_goal

    def _open(name: str = "ws", **overrides) -> Workspace:
        shutil.copytree(contracts_template, tmp_path / name)
        ws = open_ws(name, **overrides)
        save_goal(ws, load_goal_file(GOAL_FILE))
        return ws

    return _open


@pytest.fixture
async def session_factory(open_ws):
    """`await session_factory(ws, thread)`: an open Session on this test's event loop, closed after it."""
    from goalcover.agent.session import Session

    sessions = []

    async def _session(ws: Workspace | None = None, thread: str = "t1", **kwargs) -> Session:
        session = await Session.open(ws or open_ws(), thread, **kwargs)
        sessions.append(session)
        return session

    yield _session
    for session in sessions:
        await session.aclose()


async def drain(events) -> list:
    """Every event of one turn (an async iterator), in order."""
    return [event async for event in events]


def reply_text(events) -> str:
    from goalcover.agent.session import Reply

    return "\n".join(e.text for e in events if isinstance(e, Reply))
