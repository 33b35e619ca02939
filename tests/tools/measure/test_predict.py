"""score --predict: predictors on the embeddings, prediction-powered intervals, the cascade.

The statistics on synthetic populations with a known share (repeated draws); the workspace runs against
the fake endpoint's keyword judge, with calls counted at the fake."""

from __future__ import annotations

import asyncio
import hashlib
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from goalcover.tools.measure import predict_store
from goalcover.tools.measure.coverage import coverage
from goalcover.tools.measure.ppi import Stratum, cascade_quality, fit, ppi_share, thresholds
from goalcover.tools.measure.predict import OFF_GOAL, band_samples, cascade, predict
from goalcover.tools.measure.report import render
from goalcover.tools.measure.sampled import score_sampled
from goalcover.ui.cli import app
from tests.support.judges import CONTRACT_PATTERNS, _judge, keyword_judge
from tests.support.workspaces import contracts_workspace, prepared_contracts

N = 160
# The CLI tests' cascade must leave some samples to the predictor on every target at once (a sample in
# any target's band is judged on all): at 80 judged of 160 that hung on small changes of the embeddings
# (a fresh install of 2026-12-05 sent all 80 to the judge); at 200 of 400, 24 samples are the predictor's.
CLI_N, CLI_SAMPLE = 400, "200"
runner = CliRunner()


# --- the statistics ---------------------------------------------------------------------------------

def _population(rng, size=4000, dim=16):
    """Vectors and labels whose log-odds are linear in the vectors: a predictor can learn them well."""
    x = rng.normal(size=(size, dim)).astype(np.float32)
    w = rng.normal(size=dim)
    y = rng.random(size) < 1 / (1 + np.exp(-(x @ w - 1.0)))
    return x, y


def test_ppi_interval_holds_its_coverage_and_beats_the_judged_sample_with_a_good_predictor():
    rng = np.random.default_rng(1)
    x, y = _population(rng)
    truth = y.mean()
    hits = ppi_narrower = 0
    draws = 80
    for _ in range(draws):
        drawn = rng.choice(len(y), 150, replace=False)
        model = fit(x[drawn], y[drawn], seed=0)
        f_all = model.predict(x)
        f_all[drawn] = model.p_oof
        got = ppi_share([Stratum(f_all=f_all, y=y[drawn].astype(float), f=model.p_oof)])
        hits += got.low <= truth <= got.high
        ppi_narrower += got.width < got.classical_width
    assert not model.chance and model.auc > 0.85
    # 95% intervals over 80 draws: a coverage below 85% would be a 3-sigma miss.
    assert hits / draws >= 0.85
    assert ppi_narrower / draws >= 0.9


def test_a_useless_predictor_gets_lambda_zero_and_the_judged_sample_interval():
    rng = np.random.default_rng(2)
    y = rng.random(3000) < 0.3
    noise = rng.random(3000)  # predictions unrelated to y
    drawn = rng.choice(3000, 200, replace=False)
    tuned = ppi_share([Stratum(f_all=noise, y=y[drawn].astype(float), f=noise[drawn])])
    plain = ppi_share([Stratum(f_all=noise, y=y[drawn].astype(float), f=noise[drawn])], lam=0.0)
    assert tuned.lam < 0.3
    assert tuned.width <= plain.width * 1.05
    assert plain.share == pytest.approx(y[drawn].mean())


def test_a_census_has_the_judged_share_with_a_zero_width_interval():
    """Every sample judged (`--sample N` at N >= the population): the share is known, with or without the
    predictor, as the sample-only estimate without --predict has it (estimate.stratified_share)."""
    rng = np.random.default_rng(3)
    y, f = (rng.random(200) < 0.3).astype(float), rng.random(200)
    for lam in (None, 0.0):
        got = ppi_share([Stratum(f_all=f[:120], y=y[:120], f=f[:120]), Stratum(f_all=f[120:], y=y[120:], f=f[120:])], lam=lam)
        assert (got.share, got.low, got.high, got.width) == (pytest.approx(y.mean()), got.share, got.share, 0.0)
    part = ppi_share([Stratum(f_all=f, y=y[:150], f=f[:150])], lam=0.0)  # 150 of 200: still an interval
    assert part.width > 0.05


def test_a_fit_with_too_few_positives_is_no_better_than_chance():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(100, 8))
    y = np.zeros(100, bool)
    y[:3] = True
    model = fit(x, y)
    assert model.chance and model.auc is None
    assert np.allclose(model.predict(x.astype(np.float32)), model.predict(x[:1].astype(np.float32))[0])


def test_thresholds_meet_the_precision_and_keep_the_recall():
    # P sorted high to low; labels: the top three positive, then mixed, then negatives with one stray positive.
    p = np.array([0.95, 0.9, 0.85, 0.7, 0.6, 0.5, 0.3, 0.2, 0.1, 0.05] * 3)
    y = np.array([1, 1, 1, 1, 0, 1, 0, 0, 0, 0] * 3, dtype=bool)
    t_low, t_high = thresholds(y, p, 0.9)
    above = p >= t_high
    assert y[above].mean() >= 0.9
    lost = y[p <= t_low].sum() / y.sum()
    assert lost <= 0.1
    assert t_low < t_high
    precision, recall, band = cascade_quality(y, p, t_low, t_high)
    assert precision >= 0.9 and recall >= 0.9 and 0 < band < 1


# --- a workspace ------------------------------------------------------------------------------------

@pytest.fixture
def ws(tmp_path, fake_openai):
    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    with contracts_workspace(tmp_path, fake_openai, N) as ws:
        yield ws


def test_predict_stores_a_p_per_sample_and_coverage_labels_the_predicted_shares(ws, fake_openai):
    asyncio.run(score_sampled(ws, n=80))
    calls = fake_openai.stats()["completions"]
    result = predict(ws)
    assert fake_openai.stats()["completions"] == calls  # predicting calls no model
    assert result.refit and result.population == N and result.judged_samples == 80
    assert [t.id for t in result.targets] == ["S1", "S2", "S3", "S4", "S5", OFF_GOAL]
    judge = ws.store.get_meta("judge")
    distinct = {h for h, _ in ws.store.sample_hashes().values()}
    rows = predict_store.predictions(ws, ws_goal_hash(ws, "S1"), judge["prompt_version"], judge["model"])
    assert set(rows) == distinct and all(0 <= p <= 1 for p, *_ in rows.values())
    assert all(s is not None and 1 <= s <= 5 for _, s, _, _ in rows.values())  # the regressor's score
    useful = [t for t in result.targets if not t.chance]
    assert useful, "the keyword judge's topics are learnable from the embeddings"
    for t in result.targets:
        assert 0 <= t.ci_low <= t.share <= t.ci_high <= 1
        assert t.predicted == (not t.chance)
        if t.chance:  # falls back to the sample-only estimate
            assert (t.ci_low, t.ci_high) == (t.sample_ci_low, t.sample_ci_high)
    report = coverage(ws)
    for row in report.subgoals:
        found = next(t for t in result.targets if t.id == row.id)
        assert row.predicted == found.predicted
        if row.predicted:
            assert (row.share, row.ci_low, row.ci_high) == (found.share, found.ci_low, found.ci_high)
    md = render(report, "md")
    assert " predicted" in md and "Shares marked predicted" in md
    # A rerun with nothing new judged refits nothing.
    again = predict(ws)
    assert not again.refit and [t.share for t in again.targets] == [t.share for t in result.targets]


def ws_goal_hash(ws, subgoal_id: str) -> str:
    from goalcover.tools.core.goal import current_goal

    return next(g.hash for g in current_goal(ws).subgoals if g.id == subgoal_id)


def test_the_cascade_sends_exactly_the_uncertain_band_to_the_judge_and_a_rerun_pays_nothing(ws, fake_openai):
    asyncio.run(score_sampled(ws, n=80))
    first = predict(ws, min_precision=0.9)
    band = {s.content_hash for s in band_samples(ws, first.band_order)}
    judge = ws.store.get_meta("judge")
    from goalcover.tools.core.goal import current_goal
    from goalcover.tools.measure.predict import _target_hash

    expected = set()
    for t in first.targets:
        if not t.chance:
            stored = predict_store.predictions(ws, _target_hash(current_goal(ws))[t.id], judge["prompt_version"], judge["model"])
            decided_p = predict_store.decision_ps(ws, _target_hash(current_goal(ws))[t.id], judge["prompt_version"], judge["model"])
            expected |= {h for h, (p, _, _, by) in stored.items() if by == "pending"}
            for h, (p, _, d, by) in stored.items():  # the band is exactly the decision P between the thresholds
                q = p if decided_p[h] is None else decided_p[h]
                if by == "predictor":
                    assert q >= (t.t_high if t.t_high is not None else 2) or q <= (t.t_low if t.t_low is not None else -1)
                elif by == "pending":
                    assert (t.t_low if t.t_low is not None else -1) < q < (t.t_high if t.t_high is not None else 2)
    assert band == expected and band
    before = fake_openai.stats()["completions"]
    result, final = asyncio.run(cascade(ws, "batched", 0.9))
    assert result.calls == fake_openai.stats()["completions"] - before == len(band)  # one batched call per band sample
    from tests.support.judges import sample_of

    asked_ids = {sample_of(r)[0] for r in fake_openai.requests[before:]}
    by_id = ws.store.sample_hashes()
    assert {by_id[i][0] for i in asked_ids} == band
    assert final.pending() == 0 and not final.refit
    for t in final.targets:
        if not t.chance:
            assert t.decided["pending"] == 0 and t.decided["judge"] >= 80 and t.est_precision is not None
    # A rerun pays nothing.
    again, _ = asyncio.run(cascade(ws, "batched", 0.9))
    assert again is None and fake_openai.stats()["completions"] - before == len(band)


def test_a_judge_the_embeddings_cannot_predict_falls_back_to_the_sample(ws, fake_openai):
    # Verdicts by a hash of the text: unrelated to what the text is about.
    fake_openai.rules.insert(0, _judge(CONTRACT_PATTERNS, lambda sid, hit, text: {
        "explanation": "x", "score": 5 if int(hashlib.sha256((sid + text).encode()).hexdigest(), 16) % 3 == 0 else 1}))
    asyncio.run(score_sampled(ws, n=80))
    result = predict(ws, min_precision=0.9)
    chance = [t for t in result.targets if t.chance]
    assert chance, [t.auc for t in result.targets]
    for t in chance:
        assert not t.predicted and (t.ci_low, t.ci_high) == (t.sample_ci_low, t.sample_ci_high)
        assert t.decided["predictor"] == 0  # decides nothing
    assert all(not r.predicted for r in coverage(ws).subgoals if r.id in {t.id for t in chance})


# --- the CLI ----------------------------------------------------------------------------------------

def test_cli_predict_json_labels_and_export_drops_predicted_off_goal(tmp_path, fake_openai):
    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    db, env = prepared_contracts(tmp_path, "ws", fake_openai, CLI_N)
    env = {k: v for k, v in env.items() if k.startswith(("GOALCOVER_", "OPENAI_"))}
    # 200 judged samples are too few to bound precision/recall with confidence (everything would go to the
    # judge); this test is about the plumbing, so it asks for the point estimates (ppi.thresholds).
    env["GOALCOVER_CASCADE_CONFIDENCE"] = "0"
    bad = runner.invoke(app, ["score", "--predict"], env=env)
    assert bad.exit_code == 2 and "--predict learns from a judged sample" in bad.output
    got = runner.invoke(app, ["score", "--sample", CLI_SAMPLE, "--predict", "--min-precision", "0.9", "--json"], env=env)
    assert got.exit_code == 0, got.output
    payload = json.loads(got.stdout)
    assert payload["predict"]["min_precision"] == 0.9 and len(payload["predict"]["targets"]) == 6
    assert payload["predict"]["band_calls"] > 0
    assert all(t["decided"]["pending"] == 0 for t in payload["predict"]["targets"] if not t["chance"])
    calls = fake_openai.stats()["completions"]
    again = runner.invoke(app, ["score", "--sample", CLI_SAMPLE, "--predict", "--min-precision", "0.9"], env=env)
    assert again.exit_code == 0, again.output
    assert fake_openai.stats()["completions"] == calls  # a rerun pays nothing
    assert f"predicted from {CLI_SAMPLE} judged of {CLI_N} samples" in again.stdout and "S1: AUC" in again.stdout
    assert "cascade: judge" in again.stdout and "est. precision" in again.stdout
    text = runner.invoke(app, ["report"], env=env)
    assert text.exit_code == 0 and "predicted" in text.stdout
    out = tmp_path / "clean.jsonl"
    exported = runner.invoke(app, ["export", "-o", str(out), "--drop-off-goal", "--json"], env=env)
    assert exported.exit_code == 0, exported.output
    off = next(t for t in payload["predict"]["targets"] if t["id"] == OFF_GOAL)
    assert not off["chance"] and off["decided"]["predictor"] > 0 and off["est_precision"] >= 0.9
    manifest = json.loads((tmp_path / "clean.manifest.json").read_text())
    reasons = [d["reason"] for d in manifest["dropped"]]
    assert any(r.startswith("off-goal as predicted from the embeddings (cascade's estimated precision") for r in reasons)
    assert any(r.startswith("off-goal: no subgoal scored above") for r in reasons)
