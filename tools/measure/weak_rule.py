"""Why a subgoal is (or is not) weak, in words with its numbers: the rule coverage applied
(`coverage._decide_weak`, or tools/measure/partial.py while the data is partly scored) and which part of it each
weak subgoal broke. Every place that says "weak" (the chat, the terminal, the report) says it with these.
"""

from __future__ import annotations

import statistics


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def median_share(report) -> float:
    """The median share (0-1) of the subgoals with scores, as the relative part of the rule uses it."""
    shares = [r.share for r in report.subgoals if r.scored]
    return statistics.median(shares) if shares else 0.0


def rule_text(report) -> str:
    """The weak rule with its thresholds, e.g. "under 10% of samples support it (score ≥ 4), or its share
    is under 0.5× the median subgoal's (12.0%)"; while partly scored, "… and its interval says so"."""
    t = report.thresholds
    parts = [f"under {t.weak_share:.0%} of samples support it (score ≥ {t.support})",
             f"its share is under {t.weak_relative:g}× the median subgoal's ({_pct(median_share(report))})"]
    if t.weak_mean is not None:
        parts.append(f"its mean score is below {t.weak_mean:g}")
    rule = ", or ".join(parts)
    if report.estimate is not None and report.estimate.kind == "partial":
        rule += f" — with {report.estimate.confidence:.0%} confidence, from the samples scored so far"
    return f"a subgoal is weak when {rule}"


def reasons(report, row) -> list[str]:
    """The parts of the rule `row` (a SubgoalCoverage of `report`) breaks, each with its numbers; [] when
    none does on its point figures."""
    t = report.thresholds
    median = median_share(report)
    found = []
    if not row.scored:
        return found
    if row.share < t.weak_share:
        found.append(f"{_pct(row.share)} of samples support it, under {t.weak_share:.0%}")
    if row.share < t.weak_relative * median:
        found.append(f"share {_pct(row.share)} under {t.weak_relative:g}× the median {_pct(median)} "
                     f"(= {_pct(t.weak_relative * median)})")
    if t.weak_mean is not None and row.mean is not None and row.mean < t.weak_mean:
        found.append(f"mean {row.mean:.2f} below {t.weak_mean:g}")
    return found


def why_weak(report, row) -> str:
    """One phrase saying why `row` is weak ("3.0% of samples support it, under 10%"), with P(weak) when
    estimated; "" when it is not weak."""
    if not row.weak:
        return ""
    said = "; ".join(reasons(report, row)) or "its interval lies under the rule"
    if row.p_weak is not None:
        said += f" (P(weak) {row.p_weak:.0%})"
    return said


def undecided(report, row) -> bool:
    """While partly scored: the interval does not yet settle whether `row` is weak (5% < P(weak) < 95%)."""
    return (report.estimate is not None and report.estimate.kind == "partial" and not row.weak
            and row.p_weak is not None and row.p_weak > 1 - report.estimate.confidence)


def summary(report) -> str:
    """The line under a coverage table: each weak subgoal with its reason, or, when none is weak, the rule
    applied and the lowest subgoal (the one to look at next)."""
    weak = [r for r in report.subgoals if r.weak]
    if weak:
        return "Weak — " + " · ".join(f"**{r.id}**: {why_weak(report, r)}" for r in weak) + f". (Rule: {rule_text(report)}.)"
    scored = [r for r in report.subgoals if r.scored]
    if not scored:
        return f"Nothing is scored yet, so nothing is called weak. (Rule: {rule_text(report)}.)"
    lowest = min(scored, key=lambda r: (r.share, r.mean or 0))
    mean = f", mean {lowest.mean:.2f}" if lowest.mean is not None else ""
    pending = [r.id for r in report.subgoals if undecided(report, r)]
    wait = (f" Not settled yet: {', '.join(pending)} — score the rest to know." if pending else "")
    return (f"No subgoal is weak: {rule_text(report)}. The lowest is {lowest.id} at {_pct(lowest.share)}{mean}.{wait}")
