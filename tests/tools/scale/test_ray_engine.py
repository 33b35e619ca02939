"""The Ray engine (`goalcover score --engine ray`, `ingest --engine ray`) on a real local Ray cluster
(loopback, 2 CPUs) against the fake endpoint: the same judgments as the asyncio engine, a killed worker, a
killed driver, the same vectors. Ray comes with the test install (`.[test]` includes `ray[data]`): these
tests fail, not skip, without it."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from goalcover.testing import Faults
from goalcover.tools.data.ingest import ingest_file
from goalcover.tools.core.errors import ConfigError
from goalcover.tools.core.workspace import Workspace
from tests.conftest import SFT, head_lines
from tests.support.workspaces import prepared_contracts
from tests.support.judges import sample_of
from tests.support.processes import kill_when

N = 40


@pytest.fixture(scope="module")
def cluster():
    from goalcover.testing.ray_cluster import local_cluster

    with local_cluster(num_cpus=2) as running:
        yield running


def prepared(tmp_path: Path, name: str, fake_openai, n: int = N) -> tuple[Path, dict]:
    """A workspace `name` with n contract samples and the contracts goal: (its SQLite path, the
    environment for a `goalcover` process scoring it against the fake)."""
    return prepared_contracts(tmp_path, name, fake_openai, n)


def judgments(db: Path) -> set[tuple]:
    with sqlite3.connect(db) as conn:
        return set(conn.execute(
            "SELECT sample_hash, subgoal_hash, prompt_version, model, score, explanation FROM judgments"
        ))


def judged_samples(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute("SELECT DISTINCT sample_id FROM judgments")}


def goalcover(env: dict, *args: str, timeout: float = 180) -> dict:
    done = subprocess.run([sys.executable, "-m", "goalcover", "score", *args, "--json"], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def settle(fake_openai, quiet_s: float = 1.0, timeout: float = 60) -> None:
    """Wait until the fake has had no request in flight for `quiet_s` (calls sent before a kill land)."""
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < quiet_s:
        assert time.monotonic() < deadline, "the endpoint never went quiet"
        if fake_openai.stats()["in_flight"]:
            quiet_since = time.monotonic()
        time.sleep(0.05)


def test_ray_engine_matches_asyncio_and_a_rerun_makes_no_call(tmp_path, fake_openai, cluster):
    local_db, local_env = prepared(tmp_path, "local", fake_openai, n=30)
    ray_db, ray_env = prepared(tmp_path, "ray", fake_openai, n=30)

    local = goalcover(local_env, "--concurrency", "4")
    local_bodies = sorted(json.dumps(r.body, sort_keys=True) for r in fake_openai.requests)
    fake_openai.reset_stats()
    sent = len(fake_openai.requests)
    first = goalcover(ray_env, "--engine", "ray", "--ray-address", cluster.address, "--actors", "2")
    ray_bodies = sorted(json.dumps(r.body, sort_keys=True) for r in fake_openai.requests[sent:])

    assert first["calls"] == local["calls"] == 30 == fake_openai.stats()["completions"]
    assert first["judgments"] == local["judgments"] == 30 * 5 and first["failed"] == 0
    assert ray_bodies == local_bodies  # the same prompts, schemas and bounds, request for request
    assert judgments(ray_db) == judgments(local_db)

    again = goalcover(ray_env, "--engine", "ray", "--ray-address", cluster.address)
    assert again["calls"] == 0 and again["cached"] == 30 * 5 and again["judgments"] == 30 * 5
    assert fake_openai.stats()["completions"] == 30


def test_a_worker_killed_mid_run_still_ends_with_every_pair_judged(tmp_path, fake_openai, cluster, monkeypatch):
    from goalcover.tools.scale.ray_engine import score_on_ray

    db, env = prepared(tmp_path, "ws", fake_openai)
    for key in ("GOALCOVER_MODEL", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.setenv(key, env[key])
    fake_openai.set_faults(Faults(latency_ms=200))
    killed: list[int] = []

    def kill_one_worker() -> None:
        deadline = time.monotonic() + 120
        while fake_openai.stats()["completions"] < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        pids = cluster.worker_pids("JudgeActor")
        if pids and fake_openai.stats()["completions"] < N:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    killer = threading.Thread(target=kill_one_worker, daemon=True)
    killer.start()
    with Workspace.open(tmp_path / "ws") as ws:
        result = score_on_ray(ws, "batched", address=cluster.address, actors=2, concurrency=2, block_size=4)
    killer.join(timeout=5)

    assert killed, "no judge worker was running to kill"
    assert result.judgments == N * 5 and result.failed == 0
    assert len(judged_samples(db)) == N
    # The killed worker's unfinished block was sent again: at least every call, at most a block more each.
    assert N <= fake_openai.stats()["completions"] <= N + 2 * 4 * 4


def test_a_driver_killed_mid_run_then_rerun_pays_only_for_missing_pairs(tmp_path, fake_openai, cluster):
    db, env = prepared(tmp_path, "ws", fake_openai)
    fake_openai.set_faults(Faults(latency_ms=200))
    proc = subprocess.Popen(
        [sys.executable, "-m", "goalcover", "score", "--engine", "ray", "--ray-address", cluster.address,
         "--actors", "2", "--concurrency", "2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    kill_when(proc, lambda: len(judged_samples(db)) >= 8)
    settle(fake_openai)  # the dead job's workers finish (or are stopped by Ray) before the rerun
    first = judged_samples(db)
    assert 8 <= len(first) < N
    before = fake_openai.stats()["completions"]
    sent = len(fake_openai.requests)

    fake_openai.set_faults(Faults())
    rerun = goalcover(env, "--engine", "ray", "--ray-address", cluster.address)
    asked = [sample_of(r)[0] for r in fake_openai.requests[sent:]]
    assert rerun["calls"] == fake_openai.stats()["completions"] - before == N - len(first)
    assert not set(asked) & first and sorted(asked) == sorted(set(asked))
    assert rerun["judgments"] == N * 5 and rerun["failed"] == 0


def test_without_ray_the_engine_names_the_extra(monkeypatch):
    from goalcover.tools.scale import ray_engine

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r"pip install 'goalcover\[ray\]'"):
        ray_engine.require_ray()


def test_ray_only_options_need_the_ray_engine(tmp_path):
    done = subprocess.run([sys.executable, "-m", "goalcover", "score", "--actors", "4"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "GOALCOVER_WORKSPACE": str(tmp_path / "ws")})
    assert done.returncode == 2 and "--engine ray" in done.stderr


def stored_vectors(ws: Workspace) -> dict[str, list[float]]:
    got = ws.index.collection().get(include=["embeddings"])
    return dict(zip(got["ids"], got["embeddings"]))


def test_ingest_with_ray_embeds_as_the_local_engine_does(tmp_path, cluster):
    import numpy as np

    data = head_lines(SFT / "contracts_alpaca.jsonl", tmp_path / "contracts.jsonl", 120)
    env = {**os.environ, "GOALCOVER_WORKSPACE": str(tmp_path / "ray")}
    done = subprocess.run(
        [sys.executable, "-m", "goalcover", "ingest", str(data), "--engine", "ray", "--ray-address", cluster.address,
         "--actors", "1", "--json"], env=env, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["new"] == 120
    with Workspace.open(tmp_path / "local") as ws:
        ingest_file(ws, data)
        local = stored_vectors(ws)
    with Workspace.open(tmp_path / "ray") as ws:
        on_ray = stored_vectors(ws)
        hits = [h.id for h in ws.index.search("termination for convenience", k=5)]
    assert on_ray.keys() == local.keys() and len(local) == 120
    ids = sorted(local)
    # bf16 autocast (the default backend here) rounds a little differently with another batch's padding.
    np.testing.assert_allclose(np.array([on_ray[i] for i in ids]), np.array([local[i] for i in ids]), atol=2e-3)
    with Workspace.open(tmp_path / "local") as ws:
        assert hits[:3] == [h.id for h in ws.index.search("termination for convenience", k=5)][:3]


def test_ray_embedder_places_vectors_in_order_and_reingest_sends_nothing(tmp_path, cluster, monkeypatch):
    from goalcover.tools.scale import ray_embed
    from goalcover.tools.data.embeddings import embed

    texts = [f"clause {i}: the supplier shall indemnify the buyer" if i % 2 else f"note {i}" for i in range(50)]
    with ray_embed.RayEmbedder(cluster.address, actors=2, cpus=0.5, block=7) as embedder:
        vectors = embedder(texts)
    assert vectors.shape == (50, 384)
    assert abs(vectors @ embed(texts).T).diagonal().min() > 0.999  # row i is text i's vector

    data = head_lines(SFT / "contracts_alpaca.jsonl", tmp_path / "contracts.jsonl", 20)
    with Workspace.open(tmp_path / "ws") as ws:
        ingest_file(ws, data)
        called = []
        monkeypatch.setattr(ray_embed, "connected", lambda *a, **k: called.append(a) or None)
        with ray_embed.RayEmbedder(cluster.address) as embedder:
            result = ingest_file(ws, data, embedder=embedder)
    assert result.unchanged == 20 and result.embedded == 0 and not called


def test_the_http_processor_posts_the_same_bodies_and_records_failures(tmp_path, fake_openai, cluster, monkeypatch):
    import asyncio

    from goalcover.tools.judge import scoring
    from goalcover.tools.scale.ray_engine import score_on_ray

    local_db, env = prepared(tmp_path, "local", fake_openai, n=20)
    ray_db, _ = prepared(tmp_path, "ray", fake_openai, n=20)
    for key in ("GOALCOVER_MODEL", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.setenv(key, env[key])
    with Workspace.open(tmp_path / "local") as ws:
        asyncio.run(scoring.score(ws, "batched"))
    local_bodies = sorted(json.dumps(r.body, sort_keys=True) for r in fake_openai.requests)

    # 500s: the HTTP processor does not retry them; each is recorded as a failed pair, as the engine does.
    fake_openai.set_faults(Faults(rate_500=0.3, seed=5))
    sent = len(fake_openai.requests)
    with Workspace.open(tmp_path / "ray") as ws:
        first = score_on_ray(ws, "batched", address=cluster.address, actors=2, processor="http")
    bodies = sorted(json.dumps(r.body, sort_keys=True) for r in fake_openai.requests[sent:])
    assert bodies == local_bodies
    failed_calls = fake_openai.stats()["faults"]
    assert failed_calls and first.failed == 5 * failed_calls and first.judgments == 5 * (20 - failed_calls)

    fake_openai.set_faults(Faults())
    with Workspace.open(tmp_path / "ray") as ws:
        again = score_on_ray(ws, "batched", address=cluster.address, actors=2, processor="http")
    assert again.calls == failed_calls and again.failed == 0 and again.judgments == 20 * 5
    assert judgments(ray_db) == judgments(local_db)


def test_the_vllm_path_plans_and_keys_by_the_vllm_model(tmp_path, fake_openai, monkeypatch):
    """The driver's side of `--vllm` only (no GPU here): the processor is replaced by replies made from
    the rows it would get; vLLM itself is not exercised."""
    from contextlib import nullcontext

    from goalcover.tools.scale import ray_engine, ray_llm

    prepared(tmp_path, "ws", fake_openai, n=6)
    monkeypatch.setenv("GOALCOVER_MODEL", "hosted-judge")  # the configured judge; no endpoint or key needed
    asked: list[tuple[str, int]] = []

    class Replies:
        def __init__(self, rows):
            self.rows = rows

        def iter_batches(self, **_):
            columns = ("i", "raw", "error", "logprobs", "calls", "prompt_tokens", "completion_tokens", "repaired",
                       "repair_calls", "cost")
            out = {k: [] for k in columns}
            for row in self.rows:
                ids = json.loads(row["request"])["ids"]
                raw = json.dumps({sid: {"explanation": f"{sid} is shown.", "score": 4} for sid in ids})
                for key, value in zip(columns, (row["i"], raw, "", "", 1, 100, 20, 0, 0, 0.0)):
                    out[key].append(value)
            yield out

    def vllm_dataset(ray, rows, model, mode, settings, replicas, size):
        asked.append((model, len(rows)))
        return Replies(rows)

    monkeypatch.setattr(ray_llm, "vllm_dataset", vllm_dataset)
    monkeypatch.setattr(ray_engine, "connected", lambda address: nullcontext(None))
    monkeypatch.setattr(ray_engine, "require_ray", lambda: None)
    monkeypatch.setattr(ray_engine, "WAVE", 4)  # 6 calls go to Ray as two jobs, 4 then 2
    with Workspace.open(tmp_path / "ws") as ws:
        first = ray_engine.score_on_ray(ws, "batched", vllm_model="org/judge-7b", actors=1)
        again = ray_engine.score_on_ray(ws, "batched", vllm_model="org/judge-7b", actors=1)
        assert ws.settings.judge_model is None  # the override lasts for the run only
        other = ray_engine.plan(ws, "batched")[0]
    assert asked == [("org/judge-7b", 4), ("org/judge-7b", 2)]
    assert first.model == "org/judge-7b" and first.judgments == 6 * 5 and first.failed == 0
    assert again.calls == 0 and again.cached == 6 * 5
    assert other.model == "hosted-judge" and other.cached == 0  # another judge's cache is its own
