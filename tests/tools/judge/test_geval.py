"""G-Eval probability-weighted scores: read from real logprobs, attributed to the right verdict, stored,
shown in coverage — and absent, never guessed, where the reply does not carry them."""

from __future__ import annotations

import asyncio

import json
import math
import sqlite3

import pytest

from goalcover.testing.fake_wire import tokenize
from goalcover.tools.judge import scoring
from goalcover.tools.measure.coverage import coverage
from goalcover.tools.judge.geval import digit_weighted, weighted_scores
from goalcover.tools.measure.report import to_html, to_markdown
from goalcover.tools.core.store import Store
from tests.support.judges import CONTRACT_PATTERNS, keyword_judge
from tests.tools.judge.test_scoring import GOAL_FILE, contracts, open_ws, ws  # noqa: F401 (contracts, ws: fixtures)
from goalcover.tools.data.ingest import ingest_file
from goalcover.tools.core.goal import load_goal_file, save_goal

# The start of a real reply: qwen2.5-coder-0.5b-instruct (Q4_K_M) on llama-cpp-python 0.3.36, json_object
# mode, logprobs=True, top_logprobs=10, judging a termination clause ("Either party may terminate this
# agreement with 30 days notice.") against "account termination". Alternatives trimmed to five.
REAL = [
    {"token": '{"', "logprob": -0.4546, "top_logprobs": [
        {"token": '{"', "logprob": -0.4546}, {"token": "Let", "logprob": -1.9703}, {"token": "To", "logprob": -2.7139}]},
    {"token": "score", "logprob": -0.0001, "top_logprobs": [{"token": "score", "logprob": -0.0001}]},
    {"token": '":', "logprob": -0.0000, "top_logprobs": [{"token": '":', "logprob": -0.0000}]},
    {"token": " ", "logprob": -0.0035, "top_logprobs": [
        {"token": " ", "logprob": -0.0035}, {"token": " -", "logprob": -6.8212}, {"token": "5", "logprob": -7.1264},
        {"token": "1", "logprob": -7.5720}, {"token": "4", "logprob": -10.2157}]},
    {"token": "5", "logprob": -0.8400, "top_logprobs": [
        {"token": "5", "logprob": -0.8400}, {"token": "1", "logprob": -1.3400}, {"token": "4", "logprob": -1.6400},
        {"token": "3", "logprob": -2.7300}, {"token": "2", "logprob": -3.4200}, {"token": "0", "logprob": -4.8100}]},
    {"token": ",", "logprob": -0.03, "top_logprobs": [{"token": ",", "logprob": -0.03}]},
]


def expected(pairs: dict[int, float]) -> float:
    return sum(s * math.exp(lp) for s, lp in pairs.items()) / sum(math.exp(lp) for lp in pairs.values())


def entries(text: str, digits: dict[int, dict[str, float]] | None = None) -> list[dict]:
    """Tokens of `text`, certain except where `digits` gives a token index its own alternatives."""
    out = []
    for i, token in enumerate(tokenize(text)):
        alts = (digits or {}).get(i, {token: 0.0})
        out.append({"token": token, "logprob": alts.get(token, 0.0),
                    "top_logprobs": [{"token": t, "logprob": lp} for t, lp in alts.items()]})
    return out


def test_a_real_reply_weighs_the_scores_a_small_model_hesitated_between():
    found = weighted_scores(REAL, expected={None: 5})
    # "0" is not a score and is left out; the hesitation between 5 and 1 pulls the weighted score down.
    assert found[None] == pytest.approx(expected({5: -0.84, 1: -1.34, 4: -1.64, 3: -2.73, 2: -3.42}))
    assert 3.0 < found[None] < 4.0


def test_each_score_of_a_batched_reply_belongs_to_its_own_subgoal():
    reply = json.dumps({
        "S1": {"explanation": 'Quotes "S2": {"score": 1} in its text.', "score": 4},
        "S2": {"explanation": "Unrelated.", "score": 1},
    })
    tokens = tokenize(reply)
    # The escaped `\"score\": 1` inside S1's explanation comes first; the verdicts' own digits last.
    four, one = [i for i, t in enumerate(tokens) if t.strip() in ("4", "1") and tokens[i - 1] == ":"][-2:]
    assert (tokens[four], tokens[one]) == (" 4", " 1")
    tokens_with = entries(reply, {
        four: {" 4": -0.3, " 5": -1.5, " 3": -2.5},
        one: {" 1": -0.1, " 2": -2.5},
    })
    found = weighted_scores(tokens_with, ("S1", "S2"), {"S1": 4, "S2": 1})
    assert found["S1"] == pytest.approx(expected({4: -0.3, 5: -1.5, 3: -2.5}))
    assert found["S2"] == pytest.approx(expected({1: -0.1, 2: -2.5}))


def test_no_weighted_score_without_alternatives_or_when_the_tokens_disagree_with_the_parsed_reply():
    assert weighted_scores(None) == {} and weighted_scores([]) == {}
    reply = '{"S1": {"explanation": "x", "score": 3}}'
    # The parsed reply says 4 (a repair, say): the digit in the tokens is not what was stored.
    assert weighted_scores(entries(reply), ("S1",), {"S1": 4}) == {}
    # A digit whose alternatives are all non-scores weighs only itself.
    assert weighted_scores(entries(reply), ("S1",), {"S1": 3}) == {"S1": 3.0}
    assert digit_weighted({"token": "x", "top_logprobs": [{"token": "y", "logprob": 0.0}]}, 0) is None


@pytest.fixture
def ws_logprobs(tmp_path, fake_openai, contracts):
    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    with open_ws(tmp_path / "ws", fake_openai, judge_logprobs=5) as ws:
        ingest_file(ws, contracts)
        save_goal(ws, load_goal_file(GOAL_FILE))
        yield ws


@pytest.mark.parametrize("mode", ["batched", "pair"])
def test_scoring_with_logprobs_records_a_weighted_score_beside_every_verdict(ws_logprobs, fake_openai, mode):
    ws = ws_logprobs
    result = asyncio.run(scoring.score(ws, mode, concurrency=4))
    assert result.failed == 0
    assert all(r.body.get("logprobs") is True and r.body.get("top_logprobs") == 5 for r in fake_openai.requests)
    judge = ws.store.get_meta("judge")
    stored = ws.store.judgments_for(judge["prompt_version"], judge["model"])
    weighted = ws.store.weighted_scores_for(judge["prompt_version"], judge["model"])
    assert weighted.keys() == stored.keys()
    # The fake puts the neighbouring digits next to each score: a 5 weighs in under 5, a 1 over 1, and the
    # ranking the verdicts give is kept.
    for key, (score, _) in stored.items():
        assert (4.5 < weighted[key] < 5.0) if score == 5 else (1.0 < weighted[key] < 1.5)
    report = coverage(ws)
    for row in report.subgoals:
        assert row.weighted_mean is not None and abs(row.weighted_mean - row.mean) < 0.5
    assert "| weighted mean |" in to_markdown(report) and "<th>weighted mean</th>" in to_html(report)


def test_without_logprobs_nothing_is_asked_and_the_report_has_no_weighted_column(ws, fake_openai):
    asyncio.run(scoring.score(ws))
    assert not any("logprobs" in r.body for r in fake_openai.requests)
    report = coverage(ws)
    assert all(row.weighted_mean is None for row in report.subgoals)
    assert "weighted mean" not in to_markdown(report) and "weighted mean" not in to_html(report)


def test_a_workspace_from_before_weighted_scores_is_migrated_with_its_judgments_kept(tmp_path):
    path = tmp_path / "goalcover.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE judgments (sample_hash TEXT NOT NULL, subgoal_hash TEXT NOT NULL, prompt_version TEXT NOT NULL,"
        " model TEXT NOT NULL, sample_id TEXT NOT NULL, subgoal_id TEXT NOT NULL,"
        " score INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5), explanation TEXT NOT NULL,"
        " created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (sample_hash, subgoal_hash, prompt_version, model));"
        "INSERT INTO judgments (sample_hash, subgoal_hash, prompt_version, model, sample_id, subgoal_id, score, explanation)"
        " VALUES ('h', 'g', 'judge-v1/batched', 'm', 'contracts:1', 'S1', 4, 'kept');"
    )
    old.commit()
    old.close()
    store = Store(path)
    try:
        assert store.judgments_for("judge-v1/batched", "m") == {("h", "g"): (4, "kept")}
        assert store.weighted_scores_for("judge-v1/batched", "m") == {}
        store.save_judgments([{"sample_hash": "h2", "subgoal_hash": "g", "prompt_version": "judge-v1/batched", "model": "m",
                               "sample_id": "contracts:2", "subgoal_id": "S1", "score": 2, "explanation": "new",
                               "weighted_score": 2.4}])
        assert store.weighted_scores_for("judge-v1/batched", "m") == {("h2", "g"): 2.4}
    finally:
        store.close()


def test_coverage_decides_support_on_the_weighted_score_where_there_is_one(ws):
    """Issue 18 item 4: a weighted score >= 3.5 supports even under a verdict of 3; a verdict of 4 whose
    weighted score is 3.2 does not; a judgment without one is decided by its verdict; the verdict's own
    count is kept beside."""
    from goalcover.tools.core.goal import current_goal
    from goalcover.tools.core.store import JUDGE_KEY

    goal = current_goal(ws)
    s1 = goal.subgoal("S1")
    samples = ws.store.samples()[:5]
    given = [(4, 3.2), (3, 3.7), (5, None), (2, None), (3, 3.9)]
    ws.store.save_judgments([
        {"sample_hash": s.content_hash, "subgoal_hash": s1.hash, "prompt_version": "v", "model": "m",
         "sample_id": s.id, "subgoal_id": "S1", "score": score, "explanation": "x", "weighted_score": w}
        for s, (score, w) in zip(samples, given)
    ])
    ws.store.set_meta(JUDGE_KEY, {"model": "m", "prompt_version": "v", "mode": "pair"})
    row = coverage(ws).subgoals[0]
    assert (row.supporting, row.supporting_verdict) == (3, 2)
    assert row.best_sample_ids == [samples[2].id, samples[4].id, samples[1].id]
    # partly scored: the share is estimated over the judged samples (issue 26), not over all samples
    assert row.share == pytest.approx(3 / len(samples), abs=1e-4)
    ws.settings.support_weighted = 3.8
    row = coverage(ws).subgoals[0]
    assert (row.supporting, row.supporting_verdict) == (2, 2)
    assert row.best_sample_ids == [samples[2].id, samples[4].id]
    assert coverage(ws).thresholds.support_weighted == 3.8
