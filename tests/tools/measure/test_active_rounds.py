"""Active rounds of `score --predict --target-width`: the two-phase interval's coverage on a synthetic
population, and a workspace run against the fake endpoint's keyword judge (probabilities stored, intervals
reweighted, a rerun pays nothing)."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from goalcover.tools.measure.active import ACTIVE_KEY, cumulative_pi, effective_f, share
from goalcover.tools.measure.ppi import poisson_draw
from goalcover.ui.cli import app
from tests.support.judges import CONTRACT_PATTERNS, keyword_judge
from tests.support.workspaces import contracts_workspace, prepared_contracts

N = 160


def test_first_round_exact_plus_reweighted_rest_covers_the_true_share():
    rng = np.random.default_rng(7)
    size = 3000
    logit = rng.normal(-1.0, 2.0, size)
    truth_p = 1 / (1 + np.exp(-logit))
    y = rng.random(size) < truth_p
    f = np.clip(truth_p + rng.normal(0, 0.1, size), 0.01, 0.99)  # a decent, not perfect, predictor
    hits = narrower = 0
    repeats = 200
    for r in range(repeats):
        first = rng.choice(size, 60, replace=False)
        rest = np.setdiff1d(np.arange(size), first)
        budgets = [60.0, 80.0]
        drawn = set()
        for k, b in enumerate(budgets):
            from goalcover.tools.measure.ppi import active_probabilities

            drawn.update(poisson_draw(active_probabilities(f[rest], b), np.random.default_rng(1000 * r + k)).tolist())
        pi = cumulative_pi(f[rest], budgets)
        pos = np.array(sorted(drawn))
        got = share(float(y[first].sum()), len(first), f[rest], pi, pos, y[rest][pos].astype(float))
        hits += got.low <= y.mean() <= got.high
        narrower += got.width <= got.classical_width + 1e-12
        assert 0 <= got.low <= got.share <= got.high <= 1
    # 95% intervals over 200 repeats: below 89% would be a 3-sigma miss.
    assert hits / repeats >= 0.89, hits / repeats
    assert narrower / repeats >= 0.9


def test_effective_f_keeps_the_mean_uncertainty_and_budgets_add_up():
    a, b = np.array([0.1, 0.5, 0.9]), np.array([0.5, 0.5, 0.2])
    f = effective_f([a, b], 3)
    assert np.allclose(f * (1 - f), (a * (1 - a) + b * (1 - b)) / 2)
    assert np.allclose(effective_f([], 4), 0.5)
    pi = cumulative_pi(np.linspace(0.05, 0.95, 100), [10, 10])
    assert 10 < pi.sum() <= 20 and (pi > 0).all()


@pytest.fixture
def ws(tmp_path, fake_openai):
    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    with contracts_workspace(tmp_path, fake_openai, N) as ws:
        yield ws


def test_active_rounds_store_probabilities_and_reweight_the_intervals(ws, fake_openai):
    from goalcover.tools.measure.active import score_active

    total, result = asyncio.run(score_active(ws, n=40, target_width=12))
    saved = ws.store.get_meta(ACTIVE_KEY)
    assert saved and saved["budgets"] and saved["pi"]
    assert all(0 < p <= 1 for p in saved["pi"].values())
    from goalcover.tools.measure.strata import current_design

    first = set(current_design(ws).drawn_ids())
    assert not first & set(saved["pi"])  # active draws come from the rest only
    assert result.judged_samples == 40  # the predictors learn from the random round alone
    rows = [t for t in result.targets if t.id != "off_goal"]
    assert all(t.active_draws > 0 for t in rows)
    for t in result.targets:
        assert 0 <= t.ci_low <= t.share <= t.ci_high <= 1
    assert total.calls == fake_openai.stats()["completions"]
    # A rerun redraws nothing new and pays nothing; the figures are the same.
    calls = fake_openai.stats()["completions"]
    _, again = asyncio.run(score_active(ws, n=40, target_width=12))
    assert fake_openai.stats()["completions"] == calls
    assert ws.store.get_meta(ACTIVE_KEY)["pi"] == saved["pi"] or len(ws.store.get_meta(ACTIVE_KEY)["pi"]) > len(saved["pi"])
    assert [t.share for t in again.targets] == [t.share for t in result.targets]


def test_cli_target_width_with_predict_runs_active_rounds(tmp_path, fake_openai):
    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    _, env = prepared_contracts(tmp_path, "ws", fake_openai, N)
    env = {k: v for k, v in env.items() if k.startswith(("GOALCOVER_", "OPENAI_"))}
    got = CliRunner().invoke(app, ["score", "--sample", "40", "--target-width", "12", "--predict", "--json"], env=env)
    assert got.exit_code == 0, got.output
    targets = json.loads(got.stdout)["predict"]["targets"]
    assert any(t["active_draws"] > 0 for t in targets)
