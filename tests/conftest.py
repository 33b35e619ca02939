"""Shared fixtures: the real datasets vendored in tests/data, fresh workspaces, the fake OpenAI endpoint."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
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


# Tests of one kind run one after another on one xdist worker (scripts/test.sh runs the suite with `-n 2
# --dist loadgroup`): two llama.cpp servers, two local Ray clusters, or two Chainlit servers with their
# browsers at once would each want the whole machine, and make the waits in those tests flaky.
SERIAL_GROUPS = {"tests/tools/scale/": "ray", "tests/ui/test_browser": "browser"}
# Each real-model test module starts its own llama.cpp server; the two are the longest tests, so they may run
# beside each other on the two workers rather than one after the other (the critical path of a CI run).


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks
def pytest_collection_modifyitems(config, items):
    root = Path(__file__).resolve().parent.parent
    for item in items:
        # xdist requires every worker to collect the same ids; an id made from bytes (a gzip header carries
        # its mtime) or from anything else that varies between collections breaks the whole run.
        if "\\x" in item.nodeid:
            raise pytest.UsageError(f"{item.nodeid}: give this parametrized test readable ids (pytest.param(..., id=...))")
        where = Path(item.fspath).resolve().relative_to(root).as_posix()
        for prefix, group in SERIAL_GROUPS.items():
            if where.startswith(prefix):
                item.add_marker(pytest.mark.xdist_group(group))


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


@pytest.fixture
def fast_embeddings(monkeypatch):
    """Hash-seeded unit vectors instead of MiniLM, for tests that ingest whole files or many tiny workspaces
    and never search or cluster them (experiments' plumbing, export round trips): the plumbing is the same,
    and the tests stay within seconds on 2 cores."""
    from goalcover.tools.data import embeddings

    def embed(texts, batch_size=64):
        rows = [np.random.default_rng(int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")).normal(size=embeddings.DIMENSION)
                for t in texts]
        vectors = np.array(rows, dtype=np.float32).reshape(len(texts), embeddings.DIMENSION)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)

    monkeypatch.setattr(embeddings, "embed", embed)
