"""Shared fixtures: the real datasets vendored in tests/data, fresh workspaces, the fake OpenAI endpoint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["goalcover.testing.pytest_plugin"]


# Resolved, as the engine resolves the files it reads (and names them so in its messages).
DATASETS = Path(os.environ.get("GOALCOVER_DATASETS", Path(__file__).resolve().parent / "data")).resolve()
SFT = DATASETS / "sft"
BAD = DATASETS / "bad"
HUNT = DATASETS / "hunt"


def pytest_configure(config):
    if not SFT.is_dir():
        raise pytest.UsageError(f"the test datasets are missing: expected {SFT} (tests/data, or set GOALCOVER_DATASETS)")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test reads the developer's model settings or writes outside its tmp folder."""
    for key in list(os.environ):
        if key.startswith("GOALCOVER_") and key != "GOALCOVER_DATASETS" or key in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("GOALCOVER_WORKSPACE", str(tmp_path / "ws"))


@pytest.fixture
def workspace(tmp_path):
    from goalcover.tools.core.workspace import Workspace

    with Workspace.open(tmp_path / "ws") as ws:
        yield ws


def head_lines(src: Path, dst: Path, n: int) -> Path:
    """The first n records of a real dataset file, for tests that need a small one."""
    with src.open("rb") as f:
        lines = [next(f) for _ in range(n)]
    dst.write_bytes(b"".join(lines))
    return dst
