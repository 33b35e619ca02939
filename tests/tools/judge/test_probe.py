"""Probe mode against the fake endpoint: one yes/no token per pair with logprobs, P(yes) as the score,
the sample's prefix shared by its subgoals, explanations written only when gap analysis needs them."""

from __future__ import annotations

import asyncio
import math
import re

import pytest

from goalcover.testing import ChatRequest, Reply
from goalcover.tools.judge import scoring
from goalcover.tools.measure.coverage import coverage
from goalcover.tools.data.ingest import ingest_file
from goalcover.tools.core.goal import current_goal, load_goal_file, save_goal
from goalcover.tools.judge.probe import explain_low, p_from_weighted, p_yes, to_verdict
from goalcover.tools.core.store import JUDGE_KEY
from tests.support.judges import CONTRACT_PATTERNS, sample_of
from tests.tools.judge.test_scoring import GOAL_FILE, contracts, open_ws  # noqa: F401 (contracts: fixture)

QUESTION = "Does this sample clearly exercise the subgoal?"
P_HIT = 1 / (1 + math.exp(-1.5))  # the fake ranks the other answer 1.5 nats below the one it gives


def keyword_probe(req: ChatRequest):
    """yes where the subgoal's keyword pattern matches the sample, else no."""
    found = sample_of(req)
    if found is None or QUESTION not in (req.text or ""):
        return None
    sid = re.search(r"Subgoal: (S\d+): ", req.text).group(1)
    return Reply.text("yes" if re.search(CONTRACT_PATTERNS[sid], found[1], re.IGNORECASE) else "no")


def test_p_yes_reads_the_first_tokens_alternatives_and_maps_onto_1_to_5():
    entry = [{"token": "yes", "logprob": -0.2, "top_logprobs": [
        {"token": "yes", "logprob": -0.2}, {"token": " No", "logprob": -1.8}, {"token": "the", "logprob": -3.0}]}]
    assert p_yes("yes", entry) == pytest.approx(math.exp(-0.2) / (math.exp(-0.2) + math.exp(-1.8)))
    assert p_yes("no", None) == 0.0 and p_yes("Yes.", None) == 1.0 and p_yes("maybe", None) is None
    assert p_yes("x", [{"token": "x", "logprob": 0.0, "top_logprobs": [{"token": "x", "logprob": 0.0}]}]) is None
    cuts = [0.125, 0.375, 0.625, 0.875]
    assert [to_verdict(p, cuts)[0] for p in (0.0, 0.2, 0.5, 0.7, 0.95)] == [1, 2, 3, 4, 5]
    assert to_verdict(0.625, cuts) == (4, 3.5)
    assert [to_verdict(p, cuts)[1] for p in (0.0, 0.3, 1.0)] == [1.0, 2.2, 5.0]  # 1 + 4p at the default cuts


def test_calibrated_cut_points_decide_the_verdict_and_the_weighted_support_alike(monkeypatch):
    """A small model's compressed P(yes) (here 0.30-0.45) is spread over 1-5 by its cut points, and the
    weighted score crosses 3.5 exactly where the verdict reaches 4."""
    cuts = [0.30, 0.33, 0.36, 0.42]
    for p in (0.0, 0.2, 0.30, 0.31, 0.35, 0.36, 0.4, 0.42, 0.6, 1.0):
        verdict, weighted = to_verdict(p, cuts)
        assert verdict == int(weighted + 0.5)  # the verdict is the weighted score rounded half up
        assert (weighted >= 3.5) == (verdict >= 4) == (p >= 0.36)
        assert p_from_weighted(weighted, cuts) == pytest.approx(p, abs=1e-3)
    assert to_verdict(0.36, cuts) == (4, 3.5) and to_verdict(1.0, cuts) == (5, 5.0)
    from goalcover.tools.core.errors import BadInput
    from goalcover.tools.core.settings import load_settings

    monkeypatch.setenv("GOALCOVER_PROBE_THRESHOLDS", "[0.4, 0.3, 0.5, 0.6]")
    with pytest.raises(BadInput, match="GOALCOVER_PROBE_THRESHOLDS.*ascending"):
        load_settings()


@pytest.fixture
def probe_ws(tmp_path, fake_openai, contracts):
    fake_openai.rules.append(keyword_probe)
    with open_ws(tmp_path / "ws", fake_openai) as ws:
        ingest_file(ws, contracts)
        save_goal(ws, load_goal_file(GOAL_FILE))
        yield ws


def test_probe_mode_scores_every_pair_with_one_token_and_shares_each_samples_prefix(probe_ws, fake_openai):
    ws = probe_ws
    plan, _, _ = scoring.plan(ws, "probe")
    assert plan.calls == plan.pairs == plan.to_score and plan.est_completion_tokens == plan.pairs
    result = asyncio.run(scoring.score(ws, "probe", concurrency=1))
    assert (result.failed, result.calls, result.judgments) == (0, plan.pairs, plan.pairs)
    requests = [r for r in fake_openai.requests if QUESTION in (r.text or "")]
    assert len(requests) == plan.pairs
    for r in requests:
        assert r.body["max_tokens"] == 1 and r.body["logprobs"] is True and r.body["top_logprobs"] == 20
        assert "response_format" not in r.body
    # one sample's subgoals are asked one after the other, and their prompts differ only after the sample
    prefixes = [r.text[: r.text.index("Subgoal: ")] for r in requests]
    runs = [prefixes[i:i + 5] for i in range(0, len(prefixes), 5)]
    assert all(len(set(run)) == 1 for run in runs) and len({run[0] for run in runs}) == len(runs)
    judge = ws.store.get_meta(JUDGE_KEY)
    assert judge["mode"] == "probe" and judge["prompt_version"] == "probe-v1/probe"
    goal = current_goal(ws)
    for sample in ws.store.samples():
        stored = ws.store.judgments_among(judge["prompt_version"], judge["model"], [sample.content_hash])
        for g in goal.subgoals:
            score, explanation, weighted = stored[(sample.content_hash, g.hash)]
            hit = bool(re.search(CONTRACT_PATTERNS[g.id], sample.text, re.IGNORECASE))
            p = P_HIT if hit else 1 - P_HIT
            assert weighted == pytest.approx(1 + 4 * p, abs=1e-3) and score == (4 if hit else 2)
            assert explanation == ""  # nothing asked for one yet
    report = coverage(ws)
    for row in report.subgoals:  # support at weighted >= 3.5, i.e. P(yes) >= 0.625: the keyword hits
        hits = sum(bool(re.search(CONTRACT_PATTERNS[row.id], s.text, re.IGNORECASE)) for s in ws.store.samples())
        assert row.supporting == hits


def test_probe_explanations_are_written_on_demand_for_low_scores_only(probe_ws, fake_openai):
    ws = probe_ws
    asyncio.run(scoring.score(ws, "probe"))
    judge = ws.store.get_meta(JUDGE_KEY)
    goal = current_goal(ws)
    s4 = goal.subgoal("S4")
    low = ws.store.low_scored(judge["prompt_version"], judge["model"], s4.hash, 4)
    assert len(low) > 3
    ws.settings.probe_explain_max = 3
    before = fake_openai.stats()["completions"]
    assert asyncio.run(explain_low(ws, [s4], judge)) == 3
    assert fake_openai.stats()["completions"] - before == 3
    explained = [e for _, _, e in ws.store.low_scored(judge["prompt_version"], judge["model"], s4.hash, 4) if e]
    assert len(explained) == 3
    others = ws.store.judgments_for(judge["prompt_version"], judge["model"])
    assert all(e == "" for (h, g), (_, e) in others.items() if g != s4.hash)
    assert asyncio.run(explain_low(ws, [s4], judge)) == 3  # the next three; the written ones are kept
    assert asyncio.run(explain_low(ws, [s4], {**judge, "mode": "batched"})) == 0  # only probe judges


def test_gap_analysis_on_a_probe_run_explains_the_weak_subgoals_it_clusters(probe_ws, fake_openai):
    from goalcover.tools.fill.gaps import find_gaps

    ws = probe_ws
    asyncio.run(scoring.score(ws, "probe"))
    judge = ws.store.get_meta(JUDGE_KEY)
    weak = [r.id for r in coverage(ws).subgoals if r.weak]
    assert weak
    gaps = asyncio.run(find_gaps(ws))
    assert {g.subgoal_id for g in gaps} <= set(weak)
    goal = current_goal(ws)
    for g in goal.subgoals:
        low = ws.store.low_scored(judge["prompt_version"], judge["model"], g.hash, 4)
        if g.id in weak:
            assert low and all(e for _, _, e in low)  # every low score of a weak subgoal is explained now
        else:
            assert all(e == "" for _, _, e in low)  # and nothing else was paid for


def test_probe_calls_retry_http_faults_and_record_what_cannot_be_read(probe_ws, fake_openai):
    from goalcover.testing import Faults

    ws = probe_ws
    # 35% of calls fault: at the default 6 retries a pair fails 0.35^7 of the time, one run in ~13 over 120
    # pairs (a clean CI run saw it). This test is about retries working, not running out: 12 of them.
    ws.settings.max_retries = 12
    fake_openai.set_faults(Faults(rate_429=0.2, retry_after_s=0.05, rate_500=0.1, rate_bad_body=0.05, seed=7))
    result = asyncio.run(scoring.score(ws, "probe", concurrency=6))
    assert fake_openai.stats()["faults"] > 0
    assert result.failed == 0 and result.calls > result.judgments == ws.store.count_contents() * 5
    fake_openai.set_faults(Faults())
    # an answer that is neither yes nor no, without a yes/no among its alternatives, is a failure, not a score
    fake_openai.rules.insert(0, lambda req: Reply.text("perhaps") if QUESTION in (req.text or "") else None)
    goal = load_goal_file(GOAL_FILE)
    edited = goal.subgoals[0].model_copy(update={"description": "an edited description"})  # S1 is asked again
    save_goal(ws, goal.model_copy(update={"subgoals": [edited, *goal.subgoals[1:]]}))
    again = asyncio.run(scoring.score(ws, "probe"))
    assert again.new == 0 and again.failed == ws.store.count_contents()
    failures = coverage(ws).failures
    assert {f.subgoal_id for f in failures} == {"S1"} and "not yes or no" in failures[0].error


def test_the_fake_endpoint_answers_probes_without_a_rule(tmp_path, fake_openai, contracts):
    """Issue 27: `score --mode probe` against the bare fake endpoint failed every pair (it answered a
    sentence); now it answers one "yes" or "no" token with logprobs, as it answers every other request."""
    with open_ws(tmp_path / "ws", fake_openai) as ws:
        ingest_file(ws, contracts)
        save_goal(ws, load_goal_file(GOAL_FILE))
        result = asyncio.run(scoring.score(ws, "probe", concurrency=4))
    assert result.failed == 0 and result.judgments == result.calls > 0
    answers = {r.body["max_tokens"] for r in fake_openai.requests}
    assert answers == {1}
