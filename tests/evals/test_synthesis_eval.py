"""The synthesis experiment's plumbing and arithmetic, against the fake endpoint: a keyword judge and a
writer whose first batch holds one copy of a dataset record and two off-topic candidates. These runs claim
no numbers about any model."""

from __future__ import annotations

import re

from goalcover.evals import synthesis_eval
from goalcover.evals.harness import read_jsonl
from tests.support.judges import CONTRACT_PATTERNS, TERMINATION_CLAUSES, keyword_judge, synth_writer

LIMIT, N = 12, 10


def test_synthesis_funnel_and_the_coverage_lift_of_the_uncovered_subgoal(tmp_path, fake_openai, fast_embeddings):
    data = synthesis_eval.without_topic(read_jsonl(synthesis_eval.DATA), "S1", LIMIT)
    fake_openai.rules += [synth_writer(duplicate_of=data[0], off_target=2), keyword_judge(CONTRACT_PATTERNS)]
    report = synthesis_eval.main(["--model", "fake-model", "--base-url", fake_openai.base_url, "--limit", str(LIMIT),
                                  "-n", str(N), "--out", str(tmp_path / "results")])
    assert report["samples"] == LIMIT and report["gap"]["kind"] == "uncovered"
    assert (report["generated"], report["invalid"], report["duplicates"], report["rejected_by_judge"], report["kept"]) == (N, 0, 1, 2, 7)
    assert (report["requested"], report["missing"]) == (N, 0)
    assert report["accepted"] == 7
    assert report["acceptance_rate"] == round(7 / (N - 1), 3) and report["duplicate_rate"] == round(1 / N, 3)
    before, after = report["coverage_before"]["S1"], report["coverage_after"]["S1"]
    assert (before["supporting"], after["supporting"]) == (0, 7) and before["weak"]
    assert after["share"] == round(7 / (LIMIT + 7), 4)
    assert report["lift"]["supporting"] == 7 and report["lift"]["share_points"] == round(100 * after["share"], 2)
    assert report["lift"]["mean"] == round(after["mean"] - before["mean"], 3)
    # the other subgoals gain exactly the kept clauses that also match them (clause 6 mentions liability)
    kept = [TERMINATION_CLAUSES[i] for i in (1, 2, 5, 6, 7, 8, 9)]  # 0: the copy; 3, 4: off-topic (first batch)
    for sid, pattern in CONTRACT_PATTERNS.items():
        gained = report["coverage_after"][sid]["supporting"] - report["coverage_before"][sid]["supporting"]
        assert gained == sum(bool(re.search(pattern, " ".join(c), re.IGNORECASE)) for c in kept), sid
    md = (tmp_path / "results" / "synthesis_eval-fake-model.md").read_text()
    assert "| 10 | 0 | 0 | 1 | 2 | 7 | 0.78 | 0.10 |" in md and "0 → 7" in md
