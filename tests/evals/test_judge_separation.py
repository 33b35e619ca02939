"""The judge-separation measurement's plumbing, against the fake endpoint with a keyword judge (5 where a
clause says terminate/suspend, else 1). These runs claim no numbers about any model."""

from __future__ import annotations

import json

from goalcover.evals import judge_separation
from tests.support.judges import keyword_judge


def test_separation_with_weighted_scores(tmp_path, fake_openai, fast_embeddings):
    fake_openai.rules.append(keyword_judge({"S1": r"terminat|suspend"}))
    report = judge_separation.main(["--model", "fake-model", "--base-url", fake_openai.base_url, "-n", "3",
                                    "--logprobs", "5", "--out", str(tmp_path)])
    assert report["relevant_scores"] == [5, 5, 5] and report["irrelevant_scores"] == [1, 1, 1]
    assert (report["auc"], report["accuracy_at_4"], report["failed"]) == (1.0, 1.0, 0)
    weighted = report["weighted"]
    assert weighted["with_weighted_score"] == 6 and weighted["auc"] == 1.0
    # The fake's neighbouring digits pull a 5 a little down and a 1 a little up: weighted, never invented.
    assert all(4.5 < w < 5 for w in weighted["relevant_scores"]) and all(1 < w < 1.5 for w in weighted["irrelevant_scores"])
    saved = json.loads((tmp_path / "judge_separation-fake-model-logprobs.json").read_text())
    assert saved == report
    assert all(r.body.get("top_logprobs") == 5 for r in fake_openai.requests)


def test_a_bad_model_file_is_one_line_not_a_traceback(tmp_path):
    import pytest

    from goalcover.evals import corruption

    for main in (corruption.main, judge_separation.main):
        with pytest.raises(SystemExit, match=r"^error: .*missing\.gguf: no such model file$"):
            main(["--gguf", str(tmp_path / "missing.gguf"), "--out", str(tmp_path)])


def test_separation_in_probe_mode_reports_p_yes(tmp_path, fake_openai, fast_embeddings):
    from tests.tools.judge.test_probe import QUESTION

    import re

    from goalcover.testing import Reply
    from tests.support.judges import sample_of

    def probe(req):
        found = sample_of(req)
        if found is None or QUESTION not in (req.text or ""):
            return None
        return Reply.text("yes" if re.search(r"terminat|suspend", found[1], re.IGNORECASE) else "no")

    fake_openai.rules.append(probe)
    report = judge_separation.main(["--model", "fake-model", "--base-url", fake_openai.base_url, "-n", "3",
                                    "--mode", "probe", "--out", str(tmp_path)])
    assert report["relevant_scores"] == [4, 4, 4] and report["irrelevant_scores"] == [2, 2, 2]
    w = report["weighted"]
    assert w["auc"] == 1.0 and w["accuracy_at_3_5"] == 1.0 and w["with_weighted_score"] == 6
    assert all(0.8 < p < 0.85 for p in w["p_yes_relevant"]) and all(0.15 < p < 0.2 for p in w["p_yes_irrelevant"])
    assert (tmp_path / "judge_separation-fake-model-probe.json").exists()
    assert all(r.body.get("max_tokens") == 1 for r in fake_openai.requests if QUESTION in (r.text or ""))
