"""The real-judge predictor measurement's plumbing (evals/predict_auc.py), against the fake endpoint with a probe
judge that answers "yes" exactly where the experiment's keyword oracle matches. These runs claim no numbers
about any model: with hash-seeded vectors the predictors learn nothing."""

from __future__ import annotations

import json
import re

from goalcover.evals import predict_auc
from goalcover.testing import Reply
from tests.support.judges import sample_of
from tests.tools.judge.test_probe import QUESTION


def test_labels_match_a_judge_that_agrees_with_the_keywords_and_a_rerun_pays_nothing(tmp_path, fake_openai, fast_embeddings):
    def probe(req):
        found, subgoal = sample_of(req), re.search(r"Subgoal: (S\d+)", req.text or "")
        if found is None or subgoal is None or QUESTION not in (req.text or ""):
            return None
        return Reply.text("yes" if re.search(predict_auc.KEYWORDS[subgoal.group(1)], found[1], re.IGNORECASE) else "no")

    fake_openai.rules.append(probe)
    args = ["--model", "fake-model", "--base-url", fake_openai.base_url, "--limit", "40",
            "--workspace", str(tmp_path / "ws"), "--out", str(tmp_path)]
    report = predict_auc.main(args)
    assert (report["samples"], report["calls"], report["failed"], report["mode"]) == (40, 200, 0, "probe")
    assert (report["judging"]["calls"], report["judging"]["failed"]) == (200, 0)
    rows = {r["subgoal"]: r for r in report["subgoals"]}
    assert list(rows) == ["S1", "S2", "S3", "S4", "S5"]
    for r in rows.values():  # the same labels, the same vectors: the same predictor on both sides
        assert r["samples"] == 40 and r["judge_positives"] == r["keyword_positives"]
        assert (r["judge_auc"], r["judge_saving"], r["judge_chance"]) == (r["keyword_auc"], r["keyword_saving"], r["keyword_chance"])
        assert (r["judge_words_auc"], r["judge_words_saving"]) == (r["keyword_words_auc"], r["keyword_words_saving"])
        assert sum(report["judge_labels"][r["subgoal"]].values()) == r["judge_positives"]
        assert len(report["judge_labels"][r["subgoal"]]) == 40  # kept, so other predictors can be measured on them
        if 0 < r["keyword_positives"] < 40:
            assert r["kappa_judge_keyword"] == 1.0
    assert sum(r["keyword_positives"] for r in rows.values()) > 10  # the rule finds clauses about each topic
    assert json.loads((tmp_path / "predict_auc-fake-model-probe.json").read_text()) == report

    fake_openai.requests.clear()
    again = predict_auc.main(args)  # the kept workspace: every judgment is reused, what judging cost is kept
    assert again["calls"] == 0 and not [r for r in fake_openai.requests if QUESTION in (r.text or "")]
    assert again["judging"] == report["judging"] and again["subgoals"] == report["subgoals"]
