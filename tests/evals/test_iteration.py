"""The iteration experiment's plumbing: remove a category, find its gap, fill it from the pool, verify — with the
experiment's own keyword judge on the fake endpoint (these runs claim no numbers about any model)."""

from __future__ import annotations

import re

from goalcover.evals import iteration


def test_the_loop_finds_fills_and_verifies_each_removed_category(tmp_path, capsys):
    report = iteration.main(["--limit", "3", "--distractors", "6", "-n", "10", "--out", str(tmp_path / "results")])
    rows = report["categories"]
    assert [r["subgoal_id"] for r in rows] == ["S1", "S2", "S3", "S4", "S5", "S6"]
    patterns = {sid: re.compile(p, re.I) for sid, p in iteration.PATTERNS.items()}
    records, others = iteration.pick(3, 6)
    for r in rows:
        assert r["removed"] == sum(x["app"] == r["app"] for x in records)
        if r["gap"] is None:
            continue
        # Everything proposed supports the subgoal by the judge's words; the removed app's share of it is the precision.
        assert r["proposed"] <= sum(1 for x in records + others if x["app"] == r["app"] or patterns[r["subgoal_id"]].search(
            " ".join((x["instruction"], x["input"], x["output"]))))
        if r["proposed"]:
            assert r["precision"] == round(r["from_app"] / r["proposed"], 3) and r["status"] in ("closed", "shrunk", "open")
    assert report["gaps_found"] >= 1 and report["gaps_closed"] == sum(r["closed"] for r in rows)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"iteration: gaps closed \d/6, pool precision (\d\.\d\d|n/a), regressions \d+", last)
    assert last == iteration.summary(report)
    assert (tmp_path / "results" / "iteration-keyword-judge.md").read_text().rstrip().endswith(last)
