"""How far to trust the judge (issue 18): the user's spot-checks and their agreement figures, length bias,
batched mode's order effect — against the fake endpoint with keyword judges whose verdicts the tests know."""

from __future__ import annotations

import asyncio
import json
from contextlib import contextmanager

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from typer.testing import CliRunner

from goalcover.testing import ChatRequest, Reply
from goalcover.tools.judge import scoring
from goalcover.tools.judge.calibration import agreement_now, save_label, to_review
from goalcover.tools.measure.coverage import coverage
from goalcover.tools.data.ingest import ingest_file
from goalcover.tools.core.goal import save_goal
from goalcover.tools.judge.judge_quality import agreement
from goalcover.tools.core.shapes import Goal, Subgoal
from goalcover.tools.judge.order_check import order_check
from goalcover.tools.measure.report import to_html, to_json, to_markdown
from goalcover.ui.cli import app
from tests.support.judges import CONTRACT_PATTERNS, judged_subgoals, keyword_judge, sample_of
from tests.tools.judge.test_scoring import contracts, open_ws, ws  # noqa: F401 (fixtures)

runner = CliRunner()


def test_agreement_figures_are_sklearns_quadratic_kappa_with_a_bootstrap_interval():
    user = [1, 2, 3, 4, 5, 5, 4, 1, 2, 3]
    judge = [1, 2, 4, 4, 5, 3, 4, 2, 2, 1]
    found = agreement(user, judge)
    assert found.labels == 10 and found.exact == 0.6 and found.within_1 == 0.8
    assert found.kappa == pytest.approx(cohen_kappa_score(user, judge, weights="quadratic"), abs=1e-3)
    assert found.kappa_ci_low <= found.kappa <= found.kappa_ci_high < 1.0
    assert agreement(user, judge) == found  # seeded: the same interval every time
    same = agreement([4, 4, 4], [4, 4, 4])  # kappa is undefined when nothing varies: None, never a guess
    assert same.kappa is None and same.exact == 1.0
    with pytest.raises(ValueError):
        agreement([1], [])


def test_a_calibration_session_stores_labels_and_yields_the_agreement_figures(ws, monkeypatch, fake_openai):
    asyncio.run(scoring.score(ws, "batched"))
    items = to_review(ws, n=10)
    # stratified: every subgoal, and both of the keyword judge's scores where a subgoal has both
    assert len(items) == 10 and {i.subgoal_id for i in items} == {"S1", "S2", "S3", "S4", "S5"}
    s1 = [i.score for i in items if i.subgoal_id == "S1"]
    assert sorted(set(s1)) == [1, 5]
    assert to_review(ws, n=10) == items  # seeded
    # through the CLI: agree with the first, give 3 to the second, skip the third, then quit
    monkeypatch.setenv("GOALCOVER_MODEL", "fake-model")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    result = runner.invoke(app, ["calibrate", "--n", "10", "-w", str(ws.root), "--json"], input="a\n3\ns\nq\n",
                           catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout.splitlines()[-1])  # the test runner echoes the typed answers first
    assert (payload["labelled"], payload["skipped"]) == (2, 1)
    labels = ws.store.labels()
    assert [(l["sample_id"], l["subgoal_id"], l["user_score"], l["judge_score"]) for l in labels] == [
        (items[0].sample_id, items[0].subgoal_id, items[0].score, items[0].score),
        (items[1].sample_id, items[1].subgoal_id, 3, items[1].score),
    ]
    overall = payload["agreement"]["overall"]
    assert overall["labels"] == 2 and overall["exact"] == 0.5
    assert overall["within_1"] == (1.0 if abs(items[1].score - 3) <= 1 else 0.5)
    # labelled pairs are not offered again
    assert {(i.sample_id, i.subgoal_id) for i in to_review(ws, n=50)}.isdisjoint({(l["sample_id"], l["subgoal_id"]) for l in labels})
    with pytest.raises(Exception, match="No subgoal"):
        to_review(ws, n=5, subgoal="S9")


def test_poor_agreement_is_flagged_in_report_json(ws):
    asyncio.run(scoring.score(ws, "batched"))
    s1 = to_review(ws, n=8, subgoal="S1")
    for item in s1:  # the user disagrees: the opposite end of the scale every time
        save_label(ws, item, 6 - item.score)
    for item in to_review(ws, n=6, subgoal="S2"):  # ... and agrees on S2
        save_label(ws, item)
    found = agreement_now(ws)
    user = [6 - i.score for i in s1]
    assert found["S1"].kappa == pytest.approx(cohen_kappa_score(user, [i.score for i in s1], weights="quadratic",
                                                                 labels=[1, 2, 3, 4, 5]), abs=1e-3)
    assert found["S1"].poor and not found["S2"].poor and found["S2"].exact == 1.0
    data = to_json(coverage(ws))
    judge = data["judge"]
    assert judge["model"] == "fake-model"  # the judge's own keys stay beside the quality figures
    assert judge["agreement"]["S1"]["poor"] is True and judge["agreement"]["S1"]["labels"] == 8
    assert f"S1's scores disagree with your checks: κ {found['S1'].kappa:.2f} on 8 labels" in judge["flags"]
    assert not any(f.startswith("S2") for f in judge["flags"])
    assert "S1's scores disagree with your checks" in to_markdown(coverage(ws))
    page = to_html(coverage(ws))
    assert "<p class='flag'>⚠ S1&#x27;s scores disagree with your checks" in page  # under the title
    assert "<li>⚠ S1&#x27;s scores disagree with your checks" in page  # and in the judge section
    assert "Agreement with your checks" in page


LENGTH_GOAL = Goal(text="a length test", subgoals=[
    Subgoal(id="S1", title="Thorough", description="long detailed answers"),
    Subgoal(id="S2", title="Parity", description="mentions even"),
])


@contextmanager
def length_scored(tmp_path, fake_openai, rows: list[dict]):
    """A workspace holding `rows`, with LENGTH_GOAL, scored in batched mode."""
    data = tmp_path / "lengths.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with open_ws(tmp_path / "ws", fake_openai) as ws:
        ingest_file(ws, data)
        save_goal(ws, LENGTH_GOAL)
        asyncio.run(scoring.score(ws, "batched"))
        yield ws


def test_length_bias_is_flagged_on_a_dataset_built_to_have_it(tmp_path, fake_openai):
    # S1's judge rewards length (a run of 30 words); S2's looks at a word unrelated to length.
    fake_openai.rules.append(keyword_judge({"S1": r"(?:word ){30}", "S2": r"\beven\b"}))
    rng = np.random.default_rng(0)
    rows = [{"id": f"t{i}", "text": f"item {i} {'even' if rng.random() < 0.5 else 'odd'} " + "word " * int(k)}
            for i, k in enumerate(rng.integers(1, 60, size=40))]
    with length_scored(tmp_path, fake_openai, rows) as ws:
        report = coverage(ws)
    q = report.judge_quality
    assert q.length_bias_samples == {"S1": 40, "S2": 40}
    assert q.length_bias["S1"] > 0.7 and abs(q.length_bias["S2"]) < 0.4
    assert any(f.startswith("S1's scores follow sample length") for f in q.flags)
    assert not any(f.startswith("S2") for f in q.flags)
    assert to_json(report)["judge"]["length_bias"]["S1"] == q.length_bias["S1"]
    assert q.failure_rate == {"S1": 0.0, "S2": 0.0}


def first_listed_wins(req: ChatRequest):
    """A judge with position bias: the subgoal listed first scores 5, whatever the sample says."""
    if sample_of(req) is None or req.schema_name != "judgment":
        return None
    ids = judged_subgoals(req)
    return Reply.json({sid: {"explanation": "x", "score": 5 if n == 0 else 1} for n, sid in enumerate(ids)})


def test_order_check_counts_the_verdicts_a_shuffled_prompt_changes(tmp_path, fake_openai, contracts):
    with open_ws(tmp_path / "ws", fake_openai) as ws:
        ingest_file(ws, contracts)
        from goalcover.tools.core.goal import load_goal_file
        from tests.tools.judge.test_scoring import GOAL_FILE

        save_goal(ws, load_goal_file(GOAL_FILE))
        fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
        asyncio.run(scoring.score(ws, "batched"))
        before = fake_openai.stats()["completions"]
        steady = asyncio.run(order_check(ws, n=4))
        assert fake_openai.stats()["completions"] - before == 4
        assert (steady.samples, steady.verdicts, steady.changed, steady.consistency) == (4, 20, 0, 1.0)
        assert to_json(coverage(ws))["judge"]["order_consistency"] == 1.0
        fake_openai.rules.insert(0, first_listed_wins)  # now the verdicts follow the list's order
        biased = asyncio.run(order_check(ws, n=4))
        assert biased.changed > 0 and biased.consistency == round(1 - biased.changed / 20, 4)
        q = coverage(ws).judge_quality
        assert q.order_consistency == biased.consistency and any("subgoals were shuffled" in f for f in q.flags)
        asyncio.run(scoring.score(ws, "pair"))
        with pytest.raises(Exception, match="batched"):
            asyncio.run(order_check(ws, n=2))


def test_labels_become_one_subgoals_anchors_and_only_it_is_rescored(ws, fake_openai):
    from goalcover.tools.judge.calibration import apply_labels
    from goalcover.tools.core.goal import current_goal
    from goalcover.tools.core.store import JUDGE_KEY

    asyncio.run(scoring.score(ws, "batched"))
    items = to_review(ws, n=6, subgoal="S1")
    for item in items:
        save_label(ws, item, 6 - item.score if item.score in (1, 5) else None)
    before = {g.id: g.hash for g in current_goal(ws).subgoals}
    old, new = apply_labels(ws, "S1")
    goal = current_goal(ws)
    assert old.hash == before["S1"] and goal.subgoal("S1").hash == new.hash != old.hash
    assert {g.id: g.hash for g in goal.subgoals if g.id != "S1"} == {k: v for k, v in before.items() if k != "S1"}
    assert 1 <= len(new.anchors) <= 4 and all(a.score in (1, 5) for a in new.anchors)
    assert len(ws.store.labels([new.hash])) == len(items)  # the labels followed the subgoal
    plan, _, _ = scoring.plan(ws, "batched")
    assert plan.to_score == ws.store.count_contents()  # S1 only, for every sample
    fake_openai.requests.clear()
    result = asyncio.run(scoring.score(ws, "batched"))
    assert result.new == ws.store.count_contents() and result.failed == 0
    asked = [r for r in fake_openai.requests if r.body.get("response_format")]
    assert asked and all("The user scored this sample" in r.text for r in asked)
    judge = ws.store.get_meta(JUDGE_KEY)
    # agreement leaves out the anchored samples: the judge was shown them
    found = agreement_now(ws)
    assert found["S1"].labels == len(items) - len({a.sample_hash for a in new.anchors})
    assert judge["prompt_version"].startswith("judge-v1")
    with pytest.raises(Exception, match="no labels yet"):
        apply_labels(ws, "S3")


def test_length_bias_reads_a_random_subset_of_a_big_dataset(tmp_path, fake_openai):
    fake_openai.rules.append(keyword_judge({"S1": r"(?:word ){30}", "S2": r"\beven\b"}))
    rows = [{"id": f"t{i}", "text": f"item {i} {'even' if i % 2 else 'odd'} " + "word " * (i % 60 + 1)} for i in range(120)]
    with length_scored(tmp_path, fake_openai, rows) as ws:
        judge = ws.store.get_meta("judge")
        goal = LENGTH_GOAL
        full = ws.store.score_lengths(judge["prompt_version"], judge["model"], [g.hash for g in goal.subgoals])
        part = ws.store.score_lengths(judge["prompt_version"], judge["model"], [g.hash for g in goal.subgoals], limit=50)
    assert len(full[goal.subgoals[0].hash]) == 120
    sub = part[goal.subgoals[0].hash]
    assert 30 <= len(sub) <= 50 and set(sub) <= set(full[goal.subgoals[0].hash])


def test_order_check_and_calibrate_through_the_cli(tmp_path, fake_openai, monkeypatch, contracts):
    from goalcover.tools.core.goal import load_goal_file  # noqa: F401
    from tests.tools.judge.test_scoring import GOAL_FILE

    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    for k, v in {"GOALCOVER_MODEL": "fake-model", "OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": "test"}.items():
        monkeypatch.setenv(k, v)
    ws = str(tmp_path / "ws")

    def cli(*args, **kw):
        return runner.invoke(app, list(args) + ["-w", ws], catch_exceptions=False, **kw)

    assert cli("ingest", str(contracts)).exit_code == 0 and cli("goal", "--file", str(GOAL_FILE)).exit_code == 0
    scored = json.loads(cli("score", "--order-check", "3", "--json").stdout)
    assert scored["calls"] == 24 and scored["order_check"]["samples"] == 3 and scored["order_check"]["consistency"] == 1.0
    assert json.loads(cli("report", "--json").stdout)["judge"]["order_consistency"] == 1.0
    text = cli("calibrate", "--n", "3", input="a\nm\n2\nq\n")
    assert text.exit_code == 0, text.stderr
    assert "1/3 · S1" in text.stdout and "judge " in text.stdout and "2 labelled, 0 skipped" in text.stdout
    assert "overall: 2 labels" in text.stdout
    assert cli("calibrate", "--subgoal", "S9").exit_code == 2
    assert cli("score", "--judges", "only-one").exit_code == 2
