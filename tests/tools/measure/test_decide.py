"""The cascade's decision predictors (decide.py) and its band judged in rounds (predict.cascade; h28k).

The statistics on synthetic populations; the rounds on a workspace judged by the fake endpoint's keyword
judge, with every request counted at the fake."""

from __future__ import annotations

import asyncio
import sqlite3

import numpy as np
from sklearn.metrics import roc_auc_score

from goalcover.tools.core.goal import current_goal
from goalcover.tools.judge import scoring
from goalcover.tools.measure import decide, predict as predict_module, predict_store
from goalcover.tools.measure.ppi import fit
from goalcover.tools.measure.predict import OFF_GOAL, _target_hash, cascade, predict
from goalcover.tools.measure.sampled import score_sampled
from tests.support.judges import CONTRACT_PATTERNS, keyword_judge, sample_of
from tests.support.workspaces import contracts_workspace


def _population(rng, size=6000, dim=20):
    x = rng.normal(size=(size, dim))
    w = rng.normal(size=dim)
    y = rng.random(size) < 1 / (1 + np.exp(-(3 * x @ w / np.linalg.norm(w) - 2.5)))
    return x, y


def test_judgments_outside_the_random_sample_teach_the_ranking_but_not_the_out_of_fold_p():
    rng = np.random.default_rng(0)
    x, y = _population(rng)
    drawn = rng.choice(len(y), 80, replace=False)
    rest = np.setdiff1d(np.arange(len(y)), drawn)
    plain = fit(x[drawn], y[drawn], seed=0)
    # 400 more judged where the plain predictor is least sure: the band the cascade would judge.
    p = plain.predict(x[rest])
    extra = rest[np.argsort(-decide.uncertainty(p))[:400]]
    taught = decide.taught(x[drawn], y[drawn], x[extra], y[extra], x, seed=0)
    assert len(taught.p_oof) == 80 and not taught.chance
    auc_plain, auc_taught = roc_auc_score(y, plain.predict(x)), roc_auc_score(y, taught.p_all)
    assert auc_taught > auc_plain + 0.01, (auc_plain, auc_taught)
    # Without extra judgments it is the plain cross-fit.
    same = decide.taught(x[drawn], y[drawn], x[:0], y[:0], x, seed=0)
    assert np.allclose(same.p_oof, plain.p_oof) and np.allclose(same.p_all, plain.predict(x))
    # The extras are in every fold's training set: with their labels flipped the random sample's own
    # out-of-fold ranking collapses.
    others = rng.choice(rest, 2000, replace=False)
    wrong = fit(x[drawn], y[drawn], seed=0, extra=(x[others], ~y[others]))
    assert wrong.auc < 0.5 < plain.auc and len(wrong.p_oof) == 80


def test_off_goal_is_every_subgoal_scoring_low():
    rng = np.random.default_rng(1)
    a = decide.DecisionScores(np.array([0.9, 0.1, 0.2, 0.8] * 10), np.array([0.5, 0.0]), False)
    b = decide.DecisionScores(np.array([0.1, 0.2, 0.9, 0.1] * 10), np.array([0.5, 1.0]), False)
    off = np.array([False, True, False, False] * 10)  # the one sample where both subgoals are low
    got = decide.all_low([a, b], off)
    assert np.allclose(got.p_all, [0.25, 0.0]) and np.allclose(got.p_oof[:4], [0.09, 0.72, 0.08, 0.18])
    assert not got.chance
    noise = decide.DecisionScores(rng.random(40), rng.random(2), False)
    assert decide.all_low([noise], off).chance
    assert decide.all_low([a], np.zeros(40, bool)).chance  # no off-goal sample judged


def test_round_size():
    assert decide.round_size(10_000, 0.01, 100) == 100 and decide.round_size(10**6, 0.01, 100) == 10_000
    assert decide.round_size(500, 0.01, 100) == 100 and decide.round_size(500, 0, 100) == float("inf")


def test_the_band_is_judged_in_rounds_most_uncertain_first_each_content_once(tmp_path, fake_openai, monkeypatch):
    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    monkeypatch.setattr(predict_module, "ROUND_SMALLEST", 10)
    with contracts_workspace(tmp_path, fake_openai, 160, cascade_round=0.05) as ws:
        asyncio.run(score_sampled(ws, n=80))
        first = predict(ws, min_precision=0.9)
        assert len(first.band_order) > 10, "the test needs a band of several rounds"
        rounds: list[list[str]] = []

        async def scorer(ws, mode, samples, **kwargs):
            rounds.append([s.content_hash for s in samples])
            return await scoring.score(ws, mode, samples=samples, **kwargs)

        before = fake_openai.stats()["completions"]
        result, final = asyncio.run(cascade(ws, "batched", 0.9, scorer=scorer))
        sent = [h for r in rounds for h in r]
        assert len(rounds) >= 2 and all(len(r) <= 10 for r in rounds)
        assert rounds[0] == first.band_order[:10]  # the most uncertain first
        assert len(sent) == len(set(sent))  # every content at most once
        asked = [sample_of(r)[0] for r in fake_openai.requests[before:]]
        by_id = ws.store.sample_hashes()
        assert sorted(by_id[i][0] for i in asked) == sorted(sent)
        assert result.calls == fake_openai.stats()["completions"] - before == len(sent)
        assert final.pending() == 0
        # Every predictor decision is recorded with the P that made it, outside the thresholds.
        judge = ws.store.get_meta("judge")
        hashes = _target_hash(current_goal(ws))
        for t in final.targets:
            if t.chance:
                continue
            stored = predict_store.predictions(ws, hashes[t.id], judge["prompt_version"], judge["model"])
            decided_p = predict_store.decision_ps(ws, hashes[t.id], judge["prompt_version"], judge["model"])
            for h, (p, _, d, by) in stored.items():
                if by == "predictor":
                    q = p if decided_p[h] is None else decided_p[h]
                    assert (d == 1 and t.t_high is not None and q >= t.t_high) or (d == 0 and t.t_low is not None and q <= t.t_low)
        assert any(t.id == OFF_GOAL for t in final.targets)
        # A rerun pays nothing and, nothing new judged, refits no decision predictor.
        def refit(*args, **kwargs):
            raise AssertionError("refitted the decision predictors with nothing new judged")

        monkeypatch.setattr(decide, "decision_scores", refit)
        again, kept = asyncio.run(cascade(ws, "batched", 0.9, scorer=scorer))
        assert again is None and fake_openai.stats()["completions"] - before == len(sent)
        assert [t.decided for t in kept.targets] == [t.decided for t in final.targets] and not kept.refit


def test_a_workspace_from_before_gets_the_decision_p_column(tmp_path, fake_openai):
    with contracts_workspace(tmp_path, fake_openai, 20) as ws:
        ws.store.db.execute("CREATE TABLE predictions (sample_hash TEXT, target_hash TEXT, prompt_version TEXT, model TEXT, "
                            "trained TEXT, p REAL, score REAL, decision INTEGER, decided_by TEXT)")
        ws.store.db.execute("INSERT INTO predictions VALUES ('h', 't', 'v', 'm', 'x', 0.3, NULL, 0, 'predictor')")
        assert predict_store.decision_ps(ws, "t", "v", "m") == {"h": None}
        assert predict_store.predictions(ws, "t", "v", "m") == {"h": (0.3, None, 0, "predictor")}
    assert "p_decide" in {r[1] for r in sqlite3.connect(ws.store.path).execute("PRAGMA table_info(predictions)")}
