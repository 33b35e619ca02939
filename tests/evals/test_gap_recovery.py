"""The gap-recovery experiment's plumbing and its precision/recall arithmetic, against the fake endpoint with
an oracle judge (it knows each sample's app). These runs claim no numbers about any model."""

from __future__ import annotations

import json

import pytest

from goalcover.evals import gap_recovery
from goalcover.evals.harness import Judge, read_jsonl
from goalcover.testing import Reply
from tests.support.judges import judged_subgoals, sample_of

APPS = gap_recovery.apps_of(gap_recovery.GOAL_FILE)
APP_OF = {r["id"]: r["app"] for r in read_jsonl(gap_recovery.DATA)}
LIMIT = 3


def oracle(never: set[str] = frozenset()):
    """5 when the sample comes from the subgoal's app, else 1; subgoals in `never` are never supported."""

    def rule(req):
        found = sample_of(req)
        if found is None or req.schema_name != "judgment":
            return None
        verdicts = {sid: {"explanation": f"from {APP_OF[found[0]]}",
                          "score": 5 if APP_OF[found[0]] == APPS[sid] and sid not in never else 1}
                    for sid in judged_subgoals(req)}
        if "score" in (req.schema or {}).get("properties", {}):
            return Reply.json(next(iter(verdicts.values())))
        return Reply.json(verdicts)

    return rule


def test_every_removed_category_comes_back_as_a_gap_on_its_subgoal(tmp_path, fake_openai, fast_embeddings):
    fake_openai.rules.append(oracle())
    report = gap_recovery.main(["--model", "fake-model", "--base-url", fake_openai.base_url, "--limit", str(LIMIT),
                                "--out", str(tmp_path / "results")])
    assert report["samples"] == LIMIT * len(APPS)
    assert report["control"]["weak"] == [] and report["control"]["gaps"] == []
    assert report["control"]["judge_calls"] == LIMIT * len(APPS)  # batched: one call per sample
    for removal in report["removals"]:
        assert removal["removed_samples"] == LIMIT and removal["samples"] == LIMIT * (len(APPS) - 1)
        assert removal["judge_calls"] == 0  # the judgments are cached by content: the judge is paid once
        assert removal["weak"] == [removal["subgoal_id"]] and removal["found"] and removal["false_alarms"] == []
        assert [g["kind"] for g in removal["gaps"]] == ["uncovered"]
    assert (report["recall"], report["precision"]) == (1.0, 1.0)
    saved = json.loads((tmp_path / "results" / "gap_recovery-fake-model.json").read_text())
    assert saved["recall"] == 1.0
    assert "**Recall 1.00**" in (tmp_path / "results" / "gap_recovery-fake-model.md").read_text()


def test_a_subgoal_the_judge_never_supports_is_a_false_alarm_in_every_other_removal(tmp_path, fake_openai, fast_embeddings):
    fake_openai.rules.append(oracle(never={"S6"}))
    report = gap_recovery.run(Judge("fake-model", fake_openai.base_url), limit=2, workdir=tmp_path)
    assert report["control"]["weak"] == ["S6"]
    others = [r for r in report["removals"] if r["subgoal_id"] != "S6"]
    assert all(r["found"] and r["false_alarms"] == ["S6"] for r in others)
    assert report["recall"] == 1.0
    assert report["precision"] == pytest.approx(round(len(APPS) / (len(APPS) + len(others)), 3))
