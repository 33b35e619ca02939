"""Workspaces the tests start from: the first n contract clauses, ingested, with the contracts goal."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from goalcover.tools.data.ingest import ingest_file
from goalcover.tools.core.goal import load_goal_file, save_goal
from goalcover.tools.core.workspace import Workspace
from tests.conftest import SFT, head_lines

GOAL_FILE = Path(__file__).resolve().parents[2] / "evals" / "goals" / "contracts.yaml"


def _fill(ws: Workspace, tmp_path: Path, n: int) -> None:
    ingest_file(ws, head_lines(SFT / "contracts_alpaca.jsonl", tmp_path / "contracts.jsonl", n))
    save_goal(ws, load_goal_file(GOAL_FILE))


@contextmanager
def contracts_workspace(tmp_path: Path, fake_openai, n: int, **settings) -> Iterator[Workspace]:
    """An open workspace at tmp_path/ws judged by the fake endpoint, holding n contract clauses and the
    contracts goal (`settings` override the workspace's settings)."""
    with Workspace.open(tmp_path / "ws", model="fake-model", base_url=fake_openai.base_url, api_key="test", **settings) as ws:
        _fill(ws, tmp_path, n)
        yield ws


def prepared_contracts(tmp_path: Path, name: str, fake_openai, n: int) -> tuple[Path, dict]:
    """A closed workspace tmp_path/name with n contract clauses and the contracts goal: (its SQLite path,
    the environment for a `goalcover` subprocess scoring it against the fake endpoint)."""
    with Workspace.open(tmp_path / name) as ws:
        _fill(ws, tmp_path, n)
        db = ws.store.path
    env = {
        **os.environ, "GOALCOVER_WORKSPACE": str(tmp_path / name), "GOALCOVER_MODEL": "fake-model",
        "OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": "test",
    }
    return db, env
