"""Rounds of `score --predict --target-width`: random ones (the default) and active ones (`--active`:
sequential active inference, the predictors refitted every round): the interval's coverage on a synthetic
population, fewer calls than rounds drawn by the first round's predictor, and a workspace run against the
fake endpoint's keyword judge (rounds stored, round 2's predictor learned from round 1, a rerun pays nothing;
random rounds stop on the predicted widths)."""

from __future__ import annotations

import asyncio
import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from goalcover.tools.judge.judge_ref import current_judge
from goalcover.tools.measure.active import ACTIVE_KEY, effective_f, fit_round
from goalcover.tools.measure.ppi import active_probabilities, poisson_draw
from goalcover.tools.measure.sampled import PREDICTED_MAX_GROWTH
from goalcover.tools.measure.sequential import RoundData, round_budget, round_total, sequential_share
from goalcover.ui.cli import app
from tests.support.judges import CONTRACT_PATTERNS, keyword_judge
from tests.support.workspaces import contracts_workspace, prepared_contracts

N = 160


def _binned_fit(train, x_unknown, subgoals):
    """A cheap stand-in for active.fit_round: P = the past labels' share in x[:, 0]'s decile (add-one)."""
    (x, y), = train.values()
    edges = np.quantile(x[:, 0], np.linspace(0, 1, 11)[1:-1])
    bins, at = np.digitize(x[:, 0], edges), np.digitize(x_unknown[:, 0], edges)
    share = np.array([(y[bins == b].sum() + 0.5) / ((bins == b).sum() + 1) for b in range(10)])
    return {"t": share[at]}, share[at]


def _rounds(x, y, first, rounds_n, width, rng, refit=True, fitter=fit_round):
    """Active rounds on arrays as score_active runs them (sequential.py); `refit=False` keeps the first
    round's predictor for every round (the design before the rounds learned). Returns (judged, Interval)."""
    rest = np.setdiff1d(np.arange(len(y)), first)
    judged = np.zeros(len(rest), bool)
    rounds, known, widest, got = [], 0.0, 1.0, None
    f_first = None
    for _ in range(rounds_n):
        if widest < width or judged.all():
            break
        unknown = np.nonzero(~judged)[0]
        budget = round_budget(len(first) + int(judged.sum()), widest, width, 1.15, len(unknown))
        train = np.concatenate([first, rest[judged]]) if refit or f_first is None else first
        f_by, f_eff = fitter({"t": (x[train], y[train])}, x[rest[unknown]], {"t"})
        pi = active_probabilities(f_eff, budget)
        drawn = poisson_draw(pi, rng)
        labels = y[rest[unknown[drawn]]].astype(float)
        rounds.append(RoundData(known, float(f_by["t"].sum()), f_by["t"][drawn], pi[drawn], labels, budget))
        known += float(labels.sum())
        judged[unknown[drawn]] = True
        f_first = f_by
        got = sequential_share(float(y[first].sum()), len(first), len(rest), rounds)
        widest = got.width
    return len(first) + int(judged.sum()), got


def _population(rng, size=3000):
    x = rng.normal(size=(size, 6)).astype(np.float32)
    logit = 3.0 * x[:, 0] - 2.0 * x[:, 1] * x[:, 2] - 2.0
    return x, rng.random(size) < 1 / (1 + np.exp(-logit))


def test_sequential_rounds_cover_the_true_share():
    rng = np.random.default_rng(7)
    x, y = _population(rng)
    hits = narrower = 0
    repeats = 300  # each round's predictor learns from the rounds before it (a binned share: fast)
    for _ in range(repeats):
        _, got = _rounds(x, y, rng.choice(len(y), 40, replace=False), 4, 1e-3, rng, fitter=_binned_fit)
        hits += got.low <= y.mean() <= got.high
        narrower += got.width <= got.classical_width + 1e-12
        assert 0 <= got.low <= got.share <= got.high <= 1
    # 95% intervals over 300 repeats: below 91% would be a 3.2-sigma miss.
    assert hits / repeats >= 0.91, hits / repeats
    assert narrower / repeats >= 0.8, narrower / repeats


def test_refitted_rounds_need_fewer_calls_than_the_first_rounds_predictor():
    # A first round of 30 fits the predictor poorly; rounds that learn from every label reach the width with
    # fewer calls than rounds drawn by the first round's predictor alone (the design before).
    rng = np.random.default_rng(11)
    x, y = _population(rng, 4000)
    learn = fixed = 0
    for r in range(6):
        first = np.random.default_rng(r).choice(len(y), 30, replace=False)
        learn += _rounds(x, y, first, 12, 0.05, np.random.default_rng(100 + r))[0]
        fixed += _rounds(x, y, first, 12, 0.05, np.random.default_rng(100 + r), refit=False)[0]
    assert learn < 0.9 * fixed, (learn, fixed)


def test_round_weights_and_budgets():
    # A round that drew all of U (π = 1): the estimate is exact; an empty design has R's share unknown.
    r = RoundData(3.0, 1.0, np.array([1.0, 0.0]), np.array([1.0, 1.0]), np.array([1.0, 0.0]), 2.0)
    assert round_total(r)[:2] == (4.0, 0.0)
    got = sequential_share(5.0, 10, 90, [r])
    assert abs(got.share - 0.09) < 1e-12 and got.classical_width == 0
    # Rounds combine by their weights: two exact rounds of 2 and 4 positives, weights 1 and 3 -> 3.5.
    r2 = RoundData(0.0, 0.0, np.array([0.0]), np.array([1.0]), np.array([4.0]), 3.0)
    r1 = RoundData(0.0, 0.0, np.array([0.0]), np.array([1.0]), np.array([2.0]), 1.0)
    assert abs(sequential_share(0.0, 0, 100, [r1, r2]).share - 0.035) < 1e-12
    assert sequential_share(5.0, 10, 90, []).width > 0.5
    assert round_budget(100, 0.2, 0.04, 1.15, 10_000) == 100  # at most doubles the labels
    assert round_budget(1000, 0.041, 0.04, 1.15, 10_000) == math.ceil(1000 * (0.041 / 0.04) ** 2 * 1.15) - 1000
    assert round_budget(1000, 0.2, 0.04, 1.15, 50) == 50


def test_effective_f_keeps_the_mean_uncertainty():
    a, b = np.array([0.1, 0.5, 0.9]), np.array([0.5, 0.5, 0.2])
    f = effective_f([a, b], 3)
    assert np.allclose(f * (1 - f), (a * (1 - a) + b * (1 - b)) / 2)
    assert np.allclose(effective_f([], 4), 0.5)


@pytest.fixture
def ws(tmp_path, fake_openai):
    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    with contracts_workspace(tmp_path, fake_openai, N) as ws:
        yield ws


def test_active_rounds_store_probabilities_and_reweight_the_intervals(ws, fake_openai):
    from goalcover.tools.measure.active import score_active

    total, result = asyncio.run(score_active(ws, n=40, target_width=12))
    saved = ws.store.get_meta(ACTIVE_KEY)
    assert saved and len(saved["rounds"]) >= 2
    drawn = [i for r in saved["rounds"] for i in r["pi"]]
    assert drawn and all(0 < p <= 1 for r in saved["rounds"] for p in r["pi"].values())
    assert len(drawn) == len(set(drawn))  # a round draws only samples no earlier round judged
    from goalcover.tools.measure.strata import current_design

    first = set(current_design(ws).drawn_ids())
    assert not first & set(drawn)  # active draws come from the rest only
    assert result.judged_samples == 40  # the reported predictors learn from the random round alone
    rows = [t for t in result.targets if t.id != "off_goal"]
    assert all(t.active_draws > 0 for t in rows)
    for t in result.targets:
        assert 0 <= t.ci_low <= t.share <= t.ci_high <= 1
    assert total.calls == fake_openai.stats()["completions"]
    # Round 2's predictors learned from round 1's labels: its stored f differs from the first round's P.
    from goalcover.tools.measure import predict_store

    second = saved["rounds"][1]
    by_id = {i: h for i, (h, _) in ws.store.sample_hashes().items()}
    target_hash = next(iter(second["f"]))
    first_p = predict_store.predictions(ws, target_hash, *current_judge(ws).key)
    assert any(abs(v - first_p[by_id[i]][0]) > 1e-6 for i, v in second["f"][target_hash].items())
    # A rerun redraws nothing new and pays nothing; the figures are the same.
    calls = fake_openai.stats()["completions"]
    _, again = asyncio.run(score_active(ws, n=40, target_width=12))
    assert fake_openai.stats()["completions"] == calls
    assert ws.store.get_meta(ACTIVE_KEY)["rounds"] == saved["rounds"]
    assert [t.share for t in again.targets] == [t.share for t in result.targets]


def test_cli_target_width_with_predict_and_active_runs_active_rounds(tmp_path, fake_openai):
    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    _, env = prepared_contracts(tmp_path, "ws", fake_openai, N)
    env = {k: v for k, v in env.items() if k.startswith(("GOALCOVER_", "OPENAI_"))}
    got = CliRunner().invoke(app, ["score", "--sample", "40", "--target-width", "12", "--predict", "--active", "--json"], env=env)
    assert got.exit_code == 0, got.output
    targets = json.loads(got.stdout)["predict"]["targets"]
    assert any(t["active_draws"] > 0 for t in targets)
    bad = CliRunner().invoke(app, ["score", "--sample", "40", "--active"], env=env)
    assert bad.exit_code == 2 and "--active draws later rounds" in bad.output


def test_cli_target_width_with_predict_draws_random_rounds_until_the_predicted_intervals_are_narrow(tmp_path, fake_openai, monkeypatch):
    """The default: random rounds (as score_sampled draws them), each stopped or grown on the widest
    prediction-powered interval, the predictors refitted on every round's judged sample."""
    from goalcover.tools.measure import predict as predict_module

    widest: list[tuple[int, float]] = []  # (judged samples, widest predicted interval) per fit

    def recorded(ws, *args, **kwargs):
        got = real(ws, *args, **kwargs)
        widest.append((got.judged_samples, got.widest()))
        return got

    real = predict_module.predict
    monkeypatch.setattr(predict_module, "predict", recorded)
    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    _, env = prepared_contracts(tmp_path, "ws", fake_openai, N)
    env = {k: v for k, v in env.items() if k.startswith(("GOALCOVER_", "OPENAI_"))}
    got = CliRunner().invoke(app, ["score", "--sample", "40", "--target-width", "12", "--predict", "--json"], env=env)
    assert got.exit_code == 0, got.output
    payload = json.loads(got.stdout)
    assert all(t["active_draws"] == 0 for t in payload["predict"]["targets"])
    judged = payload["predict"]["judged_samples"]
    assert widest[0] == (40, widest[0][1]) and widest[0][1] >= 12  # round 1 was too wide: a second round
    assert widest[-1][0] == judged > 40 and (widest[-1][1] < 12 or judged == N)
    assert all(w >= 12 for n, w in widest if n < judged)  # no round past the first narrow one
    rounds = sorted({n for n, _ in widest})
    assert all(b <= math.ceil(a * PREDICTED_MAX_GROWTH) for a, b in zip(rounds, rounds[1:]))  # growth capped
    calls = fake_openai.stats()["completions"]
    again = CliRunner().invoke(app, ["score", "--sample", "40", "--target-width", "12", "--predict", "--json"], env=env)
    assert again.exit_code == 0, again.output
    assert fake_openai.stats()["completions"] == calls and json.loads(again.stdout)["predict"]["judged_samples"] == judged
