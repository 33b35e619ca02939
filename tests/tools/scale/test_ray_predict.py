"""`score --sample N --predict --engine ray`: the sample and the cascade's band judged on Ray, the
prediction step on Ray Data `map_batches`, on a real local Ray cluster (1 CPU) against the fake endpoint's
keyword judge: the same estimates and decisions as the local engine for the same seed."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from goalcover.tools.measure.ppi import fit
from goalcover.tools.measure.predict import predict_local
from tests.support.judges import CONTRACT_PATTERNS, keyword_judge
from tests.support.workspaces import prepared_contracts

N = 200
KEYS = ("id", "judged", "positives", "auc", "chance", "predicted", "share", "ci_low", "ci_high", "sample_ci_low",
        "sample_ci_high", "lam", "t_low", "t_high", "est_precision", "est_recall")


@pytest.fixture(scope="module")
def cluster():
    from goalcover.testing.ray_cluster import local_cluster

    with local_cluster(num_cpus=1) as running:
        yield running


def goalcover(env: dict, *args: str, timeout: float = 300) -> dict:
    done = subprocess.run([sys.executable, "-m", "goalcover", "score", *args, "--json"], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_predicting_on_ray_data_gives_the_local_engines_estimates(tmp_path, fake_openai, cluster):
    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    _, local_env = prepared_contracts(tmp_path, "local", fake_openai, N)
    _, ray_env = prepared_contracts(tmp_path, "ray", fake_openai, N)
    args = ("--sample", "80", "--predict", "--min-precision", "0.9")
    local = goalcover(local_env, *args)
    local_calls = fake_openai.stats()["completions"]
    on_ray = goalcover(ray_env, *args, "--engine", "ray", "--ray-address", cluster.address, "--actors", "1")
    assert fake_openai.stats()["completions"] == 2 * local_calls  # the same sample and band, judged on Ray
    assert on_ray["calls"] == local["calls"] and on_ray["predict"]["band_calls"] == local["predict"]["band_calls"] > 0
    assert len(local["predict"]["targets"]) == 6 and "ray_jobs" not in local["predict"]
    # One map_batches job per target's refit, and per call that fits the cascade's decision predictors (the
    # first and one after each band round) one per subgoal and per subgoal's relevance (decide.py).
    rounds = on_ray["predict"]["band_rounds"]
    assert rounds == local["predict"]["band_rounds"] >= 1 and on_ray["predict"]["ray_jobs"] == 6 + 10 * (rounds + 1)
    for a, b in zip(local["predict"]["targets"], on_ray["predict"]["targets"]):
        assert {k: b[k] for k in KEYS} == pytest.approx({k: a[k] for k in KEYS}, abs=1e-4), a["id"]
        assert b["decided"] == a["decided"], a["id"]  # who decided how many samples, exactly
    # A rerun pays nothing and refits nothing.
    again = goalcover(ray_env, *args, "--engine", "ray", "--ray-address", cluster.address, "--actors", "1")
    assert fake_openai.stats()["completions"] == 2 * local_calls and not again["predict"]["refit"]
    assert again["predict"]["ray_jobs"] == 0


def test_ray_predict_maps_every_row_back_in_order(cluster):
    from goalcover.tools.scale.ray_predict import RayPredict

    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    model = fit(x[:200], x[:200, 0] > 0)
    regressor = (rng.normal(size=16), 3.0)
    want_p, want_s = predict_local(model, regressor, x)
    with RayPredict(cluster.address, block_rows=64) as run:  # 16 blocks
        got_p, got_s = run(model, regressor, x)
        again, none = run(model, None, x)  # the vectors travel once
        assert run.jobs == 2 and none is None
    np.testing.assert_allclose(got_p, want_p, rtol=1e-6)
    np.testing.assert_allclose(got_s, want_s, rtol=1e-9)
    np.testing.assert_array_equal(again, got_p)


def test_ray_predict_carries_the_words_beside_the_vectors(cluster):
    from goalcover.tools.measure.features import Features, words
    from goalcover.tools.scale.ray_predict import RayPredict

    rng = np.random.default_rng(1)
    texts = [" ".join(rng.choice(["alpha", "beta", "gamma", "delta", "liability"], 6)) for _ in range(300)]
    x = Features(rng.normal(size=(300, 8)).astype(np.float32), words(texts))
    y = np.array(["liability" in t for t in texts])
    model = fit(x[:150], y[:150])
    regressor = (rng.normal(size=x.shape[1]), 3.0)
    want_p, want_s = predict_local(model, regressor, x)
    with RayPredict(cluster.address, block_rows=64) as run:  # 5 blocks, rows of different word counts
        got_p, got_s = run(model, regressor, x)
    np.testing.assert_allclose(got_p, want_p, rtol=1e-5)
    np.testing.assert_allclose(got_s, want_s, rtol=1e-6)
    assert model.auc > 0.95  # the words carry the target, the random vectors do not
