"""The coverage report as Markdown, JSON, or one self-contained HTML file with Plotly charts."""

from __future__ import annotations

import html
import json
from typing import Literal

from goalcover.tools.measure.coverage import CoverageReport
from goalcover.tools.measure import weak_rule

ReportFormat = Literal["md", "html", "json"]


ESTIMATE_ONLY = {"ci_low", "ci_high", "p_weak", "mean_ci_low", "mean_ci_high", "predicted"}


def to_json(report: CoverageReport) -> dict:
    """`goalcover report --json`: the design's fixed keys (samples, failed, subgoals[id, title, supporting, share, mean, weak]) and more;
    estimated coverage adds ci_low/ci_high (and p_weak, mean_ci_low/high) per subgoal and "estimate" {samples, population, confidence}."""
    data = report.model_dump(exclude={"judge_quality"} | (set() if report.estimate else {"estimate"}))
    # The design puts judge-quality figures under "judge", beside the judge's model and prompt version.
    data["judge"] = {**data["judge"], **report.judge_quality.to_json()}
    if report.estimate:
        return data
    for key in ("subgoals", "after"):
        for row in data.get(key) or []:
            for name in ESTIMATE_ONLY:
                row.pop(name, None)
    return data


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _share(s) -> str:
    """A share in %, with its 95% interval when coverage is estimated, marked "predicted" when the share and
    interval are prediction-powered (`score --predict`)."""
    if s.ci_low is None:
        return _pct(s.share)
    return f"{_pct(s.share)} ({100 * s.ci_low:.1f}–{_pct(s.ci_high)}){' predicted' if getattr(s, 'predicted', False) else ''}"


def estimate_note(report: CoverageReport) -> str:
    """One line saying coverage is estimated, from how many samples; "" when the data is fully scored."""
    if not report.estimate:
        return ""
    e = report.estimate
    if e.kind == "partial":
        return (f"**{e.samples:,} of {e.population:,} samples scored**: shares are estimated over the scored samples "
                f"({e.confidence:.0%} intervals; they are the first in file order, assumed typical of the rest). "
                "A subgoal is called weak only when its interval allows it; scoring the rest settles it.")
    return (f"Estimated from a stratified random sample of {e.samples:,} of {e.population:,} samples "
            f"({e.confidence:.0%} intervals); `goalcover score` scores the rest."
            + (" Shares marked predicted use every sample's predicted P(support) (prediction-powered intervals, "
               "`score --predict`); the others are the judged sample's." if any(getattr(r, "predicted", False) for r in report.subgoals) else ""))


def _mean(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def coverage_markdown(report: CoverageReport) -> str:
    """Coverage in a few lines for a chat (the web app, the terminal): one row per subgoal (supporting
    samples, share in %, mean score 1-5, weak), the change with accepted synthetic samples, and the counts
    of weak, off-goal, failed and unscored. The full report is `to_markdown`."""
    weak_ids = [s.id for s in report.subgoals if s.weak]
    lines = [
        f"**Coverage** of {report.samples:,} samples (a sample supports a subgoal at score ≥ {report.thresholds.support}):",
        "",
        "| subgoal | supporting | share | mean | |",
        "|---|---:|---:|---:|---|",
    ]
    if report.estimate:
        lines[:0] = [estimate_note(report), ""]
    for s in report.subgoals:
        weak = ("**weak**" if s.weak else "undecided" if weak_rule.undecided(report, s) else "") + (
            f" P(weak) {s.p_weak:.0%}" if s.p_weak is not None else "")
        lines.append(f"| {s.id} {s.title} | {s.supporting:,} | {_share(s)} | {_mean(s.mean)} | {weak.strip()} |")
    if report.after:
        after = ", ".join(
            f"{a.id} {_pct(b.share)} → {_pct(a.share)}" for b, a in zip(report.subgoals, report.after) if a.supporting != b.supporting
        )
        lines += ["", f"With {report.synthetic_accepted} accepted synthetic samples: {after or 'no change in support'}."]
    lines += [f"\n⚠ {flag}" for flag in report.judge_quality.flags]
    lines += [
        "",
        weak_rule.summary(report),
        "",
        f"Weak: {', '.join(weak_ids) or 'none'} · off-goal samples: {report.off_goal:,} · failed judgments: {report.failed:,} · "
        f"sample × subgoal pairs not yet scored: {report.unscored:,}",
    ]
    return "\n".join(lines)


def to_markdown(report: CoverageReport) -> str:
    """The full coverage report as Markdown (`goalcover report`): per-subgoal table with the score
    histogram (and G-Eval weighted means when recorded), before/after synthetic samples, off-goal sample
    ids (first 20), failed judgments (first 20). `coverage_markdown` is the short form."""
    judge = report.judge
    model, version = (judge.model, judge.prompt_version) if judge else ("—", "—")
    lines = [
        "# Coverage report",
        "",
        f"**Goal:** {report.goal}",
        "",
        f"{report.samples} samples · judge `{model}` ({version}) · "
        f"a sample supports a subgoal at score ≥ {report.thresholds.support}",
        "",
    ]
    if report.estimate:
        lines += [estimate_note(report) + " Share: estimate (95% interval); mean: stratified mean, "
                  "bootstrap interval under the table; supporting, histogram and off-goal count the judged samples.", ""]
    # The G-Eval column appears only when the judge recorded weighted scores (GOALCOVER_JUDGE_LOGPROBS).
    weighted = any(s.weighted_mean is not None for s in report.subgoals)
    lines += [
        f"| subgoal | title | supporting | share | mean |{' weighted mean |' if weighted else ''} 1 | 2 | 3 | 4 | 5 | weak |",
        f"|---|---|---:|---:|---:|{'---:|' if weighted else ''}---:|---:|---:|---:|---:|---|",
    ]
    for s in report.subgoals:
        hist = " | ".join(str(s.histogram.get(k, 0)) for k in range(1, 6))
        mean = f"{s.mean:.2f}" if s.mean is not None else "—"
        if weighted:
            mean += f" | {s.weighted_mean:.2f}" if s.weighted_mean is not None else " | —"
        weak = ("**weak**" if s.weak else "") + (f" P(weak) {s.p_weak:.0%}" if s.p_weak is not None else "")
        lines.append(f"| {s.id} | {s.title} | {s.supporting} | {_share(s)} | {mean} | {hist} | {weak.strip()} |")
    if report.estimate:
        lines += ["", "Mean score, 95% bootstrap interval: " + " · ".join(
            f"{s.id} {s.mean:.2f} ({s.mean_ci_low:.2f}–{s.mean_ci_high:.2f})" for s in report.subgoals if s.mean_ci_low is not None
        )]
    if report.after:
        lines += [
            "",
            f"## With {report.synthetic_accepted} accepted synthetic samples",
            "",
            "| subgoal | supporting before | after | share before | after | mean before | after |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for b, a in zip(report.subgoals, report.after):
            mb = f"{b.mean:.2f}" if b.mean is not None else "—"
            ma = f"{a.mean:.2f}" if a.mean is not None else "—"
            lines.append(f"| {b.id} | {b.supporting} | {a.supporting} | {_pct(b.share)} | {_pct(a.share)} | {mb} | {ma} |")
    lines += judge_markdown(report)
    lines += ["", f"**Off-goal samples** (no subgoal above {report.thresholds.off_goal_max}): {report.off_goal}"]
    if report.off_goal_ids:
        shown = ", ".join(f"`{i}`" for i in report.off_goal_ids[:20])
        lines.append(f"{shown}{' …' if len(report.off_goal_ids) > 20 else ''}")
    lines += ["", f"**Failed judgments:** {report.failed} (retried on the next `goalcover score`) · not yet scored: {report.unscored}"]
    for f in report.failures[:20]:
        lines.append(f"- `{f.sample_id}` × {f.subgoal_id}: {f.error}")
    return "\n".join(lines) + "\n"


def judge_markdown(report: CoverageReport) -> list[str]:
    """The report's "How far to trust the judge" section: flags, then each figure that was measured."""
    q = report.judge_quality
    lines = ["", "## How far to trust the judge", ""]
    lines += [f"- ⚠ {flag}" for flag in q.flags]
    if q.agreement:
        lines.append("- Agreement with your checks (`goalcover calibrate`): " + " · ".join(
            f"{sid} {a.exact:.0%} exact, {a.within_1:.0%} within 1, κ "
            + ("—" if a.kappa is None else f"{a.kappa:.2f}"
               + (f" ({a.kappa_ci_low:.2f}–{a.kappa_ci_high:.2f})" if a.kappa_ci_low is not None else ""))
            + f" on {a.labels}"
            for sid, a in q.agreement.items()))
    else:
        lines.append("- Agreement with your checks: no labels yet (`goalcover calibrate`)")
    if q.length_bias:
        lines.append("- Score vs sample length, Spearman ρ: " + " · ".join(
            f"{sid} {rho:+.2f} (n {q.length_bias_samples[sid]})" for sid, rho in q.length_bias.items()))
    if q.order_check:
        o = q.order_check
        lines.append(f"- Order check: {o.samples} samples re-scored with the subgoals shuffled, {o.changed} of "
                     f"{o.verdicts} verdicts changed (consistency {o.consistency:.0%})")
    if q.jury:
        lines.append(f"- Jury of {', '.join(q.jury.models)} — agreement per subgoal (all scored alike · mean pairwise κ): "
                     + " · ".join(f"{sid} {j.exact:.0%} · κ {'—' if j.kappa is None else f'{j.kappa:.2f}'} on {j.pairs}"
                                  for sid, j in q.jury.subgoals.items()))
        if q.jury.disagreements:
            lines.append("- Pairs the judges disagree on most (review these): " + " · ".join(
                f"`{d.sample_id}` × {d.subgoal_id} (" + ", ".join(f"{m} {v}" for m, v in d.scores.items()) + ")"
                for d in q.jury.disagreements))
    if q.failure_rate:
        lines.append("- Failure rate: " + " · ".join(f"{sid} {rate:.1%}" for sid, rate in q.failure_rate.items()))
    return lines


def figures(report: CoverageReport):
    """(bars, heatmap): share of supporting samples per subgoal in % (red = weak; grouped with "after"
    when synthetic samples were accepted), and samples per score 1-5 by subgoal (colour scale from 0).
    Plotly figures; the HTML report and the web app both use them."""
    import plotly.graph_objects as go

    ids = [s.id for s in report.subgoals]
    labels = [f"{s.id} {s.title}" for s in report.subgoals]
    colours = ["#d62728" if s.weak else "#2ca02c" for s in report.subgoals]
    bars = go.Figure(
        go.Bar(
            name="dataset",
            x=ids,
            y=[100 * s.share for s in report.subgoals],
            marker_color=colours,
            text=[f"{100 * s.share:.1f}%" for s in report.subgoals],  # the axis's unit; counts are in the hover
            hovertext=[f"{label}: {s.supporting:,} supporting samples" for label, s in zip(labels, report.subgoals)],
            # Estimated coverage: the 95% interval as error bars.
            error_y=dict(
                type="data", symmetric=False,
                array=[100 * (s.ci_high - s.share) for s in report.subgoals],
                arrayminus=[100 * (s.share - s.ci_low) for s in report.subgoals],
            ) if report.estimate and all(s.ci_low is not None for s in report.subgoals) else None,
        )
    )
    if report.after:
        bars.add_trace(
            go.Bar(
                name=f"+ {report.synthetic_accepted} accepted synthetic",
                x=ids,
                y=[100 * s.share for s in report.after],
                marker_color="#1f77b4",
                text=[f"{100 * s.share:.1f}%" for s in report.after],
            )
        )
        bars.update_layout(barmode="group")
    sampled = f" — estimated from {report.estimate.samples:,} of {report.estimate.population:,}, 95% intervals" if report.estimate else ""
    bars.update_layout(
        title=f"Samples supporting each subgoal (score ≥ {report.thresholds.support}); red = weak{sampled}",
        yaxis_title="% of samples",
        xaxis_title="subgoal",
        template="plotly_white",
    )
    heat = go.Figure(
        go.Heatmap(
            z=[[s.histogram.get(k, 0) for k in range(1, 6)] for s in report.subgoals],
            x=["1", "2", "3", "4", "5"],
            y=labels,
            colorscale="Blues",
            zmin=0,  # an empty cell is white, not the palest shade of the smallest count
            text=[[str(s.histogram.get(k, 0)) for k in range(1, 6)] for s in report.subgoals],
            texttemplate="%{text}",
        )
    )
    heat.update_layout(title="Samples per score, by subgoal", xaxis_title="score", template="plotly_white")
    return bars, heat


def to_html(report: CoverageReport) -> str:
    """One file that opens offline: Plotly's JavaScript is inlined, not fetched from a CDN."""
    from plotly.offline import get_plotlyjs

    bars, heat = figures(report)
    charts = "\n".join(
        fig.to_html(full_html=False, include_plotlyjs=False, div_id=name) for name, fig in (("coverage", bars), ("heatmap", heat))
    )
    weighted = any(s.weighted_mean is not None for s in report.subgoals)

    def weighted_cell(s) -> str:
        return f"<td>{'' if s.weighted_mean is None else f'{s.weighted_mean:.2f}'}</td>" if weighted else ""

    rows = "\n".join(
        f"<tr class='{'weak' if s.weak else ''}'><td>{s.id}</td><td>{html.escape(s.title)}</td><td>{s.supporting}</td>"
        f"<td>{_share(s)}</td><td>{'' if s.mean is None else f'{s.mean:.2f}'}</td>{weighted_cell(s)}"
        f"<td>{'weak' if s.weak else ''}</td></tr>"
        for s in report.subgoals
    )
    failures = "".join(
        f"<li><code>{html.escape(f.sample_id)}</code> × {f.subgoal_id}: {html.escape(f.error)}</li>" for f in report.failures[:50]
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>GoalCover coverage report</title>
<script type="text/javascript">{get_plotlyjs()}</script>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: left; }}
tr.weak td {{ color: #b00; font-weight: 600; }} p.flag {{ color: #b00; }}
</style></head><body>
<h1>Coverage report</h1>
<p><b>Goal:</b> {html.escape(report.goal)}</p>
<p>{report.samples} samples · judge <code>{html.escape(report.judge.model if report.judge else '—')}</code> ·
supporting = score ≥ {report.thresholds.support} · off-goal samples: {report.off_goal} ·
failed judgments: {report.failed} · not yet scored: {report.unscored}</p>
{f'<p><b>{html.escape(estimate_note(report))}</b></p>' if report.estimate else ''}
{''.join(f"<p class='flag'>⚠ {html.escape(flag)}</p>" for flag in report.judge_quality.flags)}
<table><tr><th>subgoal</th><th>title</th><th>supporting</th><th>share</th><th>mean</th>{'<th>weighted mean</th>' if weighted else ''}<th></th></tr>
{rows}</table>
{charts}
<h2>How far to trust the judge</h2>
<ul>{''.join(f"<li>{html.escape(line[2:])}</li>" for line in judge_markdown(report) if line.startswith("- "))}</ul>
{'<h2>Failed judgments</h2><ul>' + failures + '</ul>' if failures else ''}
<script type="application/json" id="report-data">{html.escape(json.dumps(to_json(report)))}</script>
</body></html>
"""


def render(report: CoverageReport, fmt: ReportFormat) -> str:
    """The coverage report as text: Markdown (`md`), JSON or one self-contained HTML page."""
    if fmt == "md":
        return to_markdown(report)
    if fmt == "html":
        return to_html(report)
    return json.dumps(to_json(report), ensure_ascii=False, indent=2)
