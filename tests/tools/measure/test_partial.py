"""Coverage of a partly scored dataset: shares over the scored samples with intervals, nothing called weak
until the interval allows it, and every "weak" said with its rule and numbers (tools/measure/partial.py,
tools/measure/weak_rule.py)."""

from __future__ import annotations

import asyncio

from goalcover.tools.judge import scoring
from goalcover.tools.measure.coverage import coverage
from goalcover.tools.measure.report import coverage_markdown
from goalcover.tools.measure.weak_rule import reasons, rule_text, summary
from tests.tools.judge.test_scoring import N, contracts, ws  # noqa: F401 (fixtures)


def test_a_stopped_run_estimates_over_the_scored_samples_and_calls_nothing_weak_too_early(ws):
    half = ws.store.samples()[: N // 2]
    asyncio.run(scoring.score(ws, samples=half))
    report = coverage(ws)
    assert report.estimate is not None and report.estimate.kind == "partial"
    assert (report.estimate.samples, report.estimate.population) == (N // 2, N)
    for row in report.subgoals:
        assert row.scored == N // 2
        assert row.share == round(row.supporting / row.scored, 4)  # over the scored samples, not all N
        assert row.ci_low <= row.share <= row.ci_high and row.ci_high - row.ci_low > 0
        assert row.weak == (row.p_weak >= 0.95)
    text = coverage_markdown(report)
    assert f"{N // 2} of {N} samples scored" in text
    assert "*, *" not in text and "pairs not yet scored" in text


def test_a_full_run_has_exact_shares_and_weak_always_states_its_rule(ws):
    asyncio.run(scoring.score(ws))
    report = coverage(ws)
    assert report.estimate is None
    for row in report.subgoals:
        assert row.share == round(row.supporting / N, 4)
        assert bool(reasons(report, row)) == row.weak  # each weak subgoal breaks a stated part of the rule
    text = coverage_markdown(report)
    line = summary(report)
    assert line in text and "under 10% of samples support it" in rule_text(report)
    weak = [r for r in report.subgoals if r.weak]
    if weak:
        assert all(f"**{r.id}**" in line for r in weak) and "%" in line
        assert f"Weak: {', '.join(r.id for r in weak)}" in text
    else:
        assert line.startswith("No subgoal is weak") and "The lowest is" in line
