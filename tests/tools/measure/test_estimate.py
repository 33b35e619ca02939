"""Estimate first: a stratified sample's intervals, the CLI's --sample/--budget/--target-width and their
JSON, and a full run after a sampled one paying only for the rest (calls counted at the fake)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from scipy import stats
from typer.testing import CliRunner

from goalcover.tools.measure.coverage import coverage
from goalcover.tools.core.errors import BadInput
from goalcover.tools.measure.estimate import stratified_share, wilson
from goalcover.tools.data.records import read_samples
from goalcover.tools.measure.report import render, to_json
from goalcover.tools.measure.sampled import score_sampled
from goalcover.tools.measure.strata import allocate, current_design, draw
from goalcover.ui.cli import app
from tests.conftest import SFT, head_lines
from tests.support.workspaces import contracts_workspace
from tests.support.judges import CONTRACT_PATTERNS, keyword_judge

N = 90
runner = CliRunner()


@pytest.fixture
def data(tmp_path) -> Path:
    return head_lines(SFT / "contracts_alpaca.jsonl", tmp_path / "contracts.jsonl", N)


@pytest.fixture
def ws(tmp_path, fake_openai):
    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    with contracts_workspace(tmp_path, fake_openai, N) as ws:
        yield ws


def truth(path: Path) -> dict[str, dict[str, bool]]:
    """sample id -> subgoal id -> supports (the keyword judge's verdict, computed from the data)."""
    return {s.id: {sid: bool(re.search(p, s.text, re.IGNORECASE)) for sid, p in CONTRACT_PATTERNS.items()}
            for s in read_samples(path).samples}


# --- the statistics ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("k", "n"), [(0, 20), (3, 40), (17, 50), (50, 50)])
def test_wilson_matches_scipy_on_a_plain_sample(k, n):
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson(k / n, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_stratified_share_weights_strata_and_a_census_has_no_width():
    # Two strata of 100 and 300, half and a tenth supporting: the share is their weighted mean.
    p, low, high, _ = stratified_share([(100, 20, 10), (300, 60, 6)])
    assert p == pytest.approx(0.25 * 0.5 + 0.75 * 0.1)
    assert low < p < high
    assert stratified_share([(10, 10, 3), (5, 5, 5)])[:3] == pytest.approx((8 / 15, 8 / 15, 8 / 15))
    # No variance seen (nothing supports): still an honest, non-zero upper bound, as Wilson gives for n = 30.
    p, low, high, _ = stratified_share([(100, 10, 0), (200, 20, 0)])
    assert (p, low) == (0.0, 0.0) and high == pytest.approx(wilson(0.0, 30)[1])


def test_allocation_is_proportional_and_exact():
    counts = allocate({"a": 500, "b": 300, "c": 200}, 37)
    assert sum(counts.values()) == 37 and counts == {"a": 19, "b": 11, "c": 7}
    assert allocate({"a": 3, "b": 2}, 100) == {"a": 3, "b": 2}


# --- a sampled run ----------------------------------------------------------------------------------

def test_sampled_run_scores_only_the_sample_and_its_intervals_hold_the_estimate(ws, fake_openai, data):
    result = asyncio.run(score_sampled(ws, n=30))
    assert fake_openai.stats()["completions"] == 30 == result.calls  # one batched call per drawn sample
    design = current_design(ws)
    assert design.size == 30 and design.population == N and len(set(design.drawn_ids())) == 30
    # Proportional allocation: every stratum's draw is its share of 30, rounded.
    for label, ids in design.strata.items():
        assert abs(design.drawn[label] - 30 * len(ids) / N) < 1
    est = result.to_json()["estimate"]  # the design's fixed JSON shape
    assert set(est) == {"samples", "population", "subgoals"} and (est["samples"], est["population"]) == (30, N)
    known = truth(data)
    for row in est["subgoals"]:
        assert set(row) == {"id", "share", "ci_low", "ci_high", "p_weak"}
        assert 0 <= row["ci_low"] <= row["share"] <= row["ci_high"] <= 1 and 0 <= row["p_weak"] <= 1
        # The share is the stratified estimator over the drawn samples.
        expected = sum(len(ids) / N * sum(known[i][row["id"]] for i in ids[: design.drawn[h]]) / design.drawn[h]
                       for h, ids in design.strata.items() if design.drawn[h])
        assert row["share"] == pytest.approx(expected, abs=1e-4)
    report = coverage(ws)
    assert report.estimate.samples == 30 and report.estimate.population == N
    for row, est_row in zip(report.subgoals, est["subgoals"]):
        assert (row.share, row.ci_low, row.ci_high, row.p_weak) == (est_row["share"], est_row["ci_low"], est_row["ci_high"], est_row["p_weak"])
        assert row.mean_ci_low <= row.mean <= row.mean_ci_high
        assert row.weak == (row.share < 0.10 or row.share < 0.5 * sorted(r.share for r in report.subgoals)[2])
    md = render(report, "md")
    assert "Estimated from a stratified random sample of 30 of 90 samples" in md
    first = report.subgoals[0]
    assert f"({100 * first.ci_low:.1f}–{100 * first.ci_high:.1f}%)" in md
    page = render(report, "html")
    assert "Estimated from a stratified random sample of 30 of 90 samples" in page
    assert f"({100 * first.ci_low:.1f}–{100 * first.ci_high:.1f}%)" in page and '"error_y"' in page
    # The chat app's coverage view (coverage_markdown and the bar chart) shows the same intervals.
    from goalcover.tools.measure.report import coverage_markdown, figures

    chat = coverage_markdown(report)
    assert "Estimated from a stratified random sample of 30 of 90 samples" in chat
    assert f"({100 * first.ci_low:.1f}–{100 * first.ci_high:.1f}%)" in chat
    bars = figures(report)[0]
    assert list(bars.data[0].error_y.array) == pytest.approx([100 * (r.ci_high - r.share) for r in report.subgoals])


def test_full_run_after_a_sampled_one_pays_only_for_the_rest_and_drops_the_intervals(ws, fake_openai, data):
    asyncio.run(score_sampled(ws, n=25))
    assert fake_openai.stats()["completions"] == 25
    drawn = set(current_design(ws).drawn_ids())
    from goalcover.tools.judge import scoring

    full = asyncio.run(scoring.score(ws))
    assert full.calls == N - 25 and full.cached == 25 * 5
    assert fake_openai.stats()["completions"] == N  # no sample was asked twice
    from tests.support.judges import sample_of

    asked_later = {sample_of(r)[0] for r in fake_openai.requests[25:]}
    assert not asked_later & drawn
    report = coverage(ws)
    assert report.estimate is None and all(r.ci_low is None for r in report.subgoals)
    payload = to_json(report)
    assert "estimate" not in payload and all("ci_low" not in r for r in payload["subgoals"])
    known = truth(data)
    for row in report.subgoals:
        assert row.share == round(sum(k[row.id] for k in known.values()) / N, 4)


def test_target_width_keeps_drawing_until_every_interval_is_narrow_enough(ws, fake_openai):
    rounds: list[tuple[int, float]] = []
    result = asyncio.run(score_sampled(ws, n=15, target_width=30, on_round=lambda n, e: rounds.append((n, e.widest()))))
    assert len(rounds) >= 2, rounds  # 15 samples cannot give ±15 points
    assert all(width >= 30 for _, width in rounds[:-1]) and rounds[-1][1] < 30
    assert [n for n, _ in rounds] == sorted({n for n, _ in rounds})  # each round draws more
    assert fake_openai.stats()["completions"] == rounds[-1][0]  # earlier rounds were never paid again
    assert max(r.ci_high - r.ci_low for r in result.estimate.subgoals) * 100 < 30


def test_target_width_stops_at_once_when_met_and_at_the_whole_dataset(ws, fake_openai):
    rounds: list[int] = []
    asyncio.run(score_sampled(ws, n=20, target_width=100, on_round=lambda n, e: rounds.append(n)))
    assert rounds == [20]
    rounds.clear()
    asyncio.run(score_sampled(ws, n=20, target_width=0.5, on_round=lambda n, e: rounds.append(n)))
    assert rounds[-1] == N and fake_openai.stats()["completions"] == N
    with pytest.raises(BadInput, match="--target-width"):
        asyncio.run(score_sampled(ws, n=20, target_width=0))


def test_draw_grows_the_same_sample_and_refuses_nonsense(ws):
    first = set(draw(ws, 20).drawn_ids())
    second = set(draw(ws, 40).drawn_ids())
    assert first < second and len(second) == 40
    assert set(draw(ws, 10).drawn_ids()) == second  # a smaller n keeps what was drawn
    with pytest.raises(BadInput, match="--sample"):
        draw(ws, 0)


# --- the CLI ----------------------------------------------------------------------------------------

def cli(tmp_path, fake_openai, *args: str, **env: str):
    return runner.invoke(app, [*args, "-w", str(tmp_path / "ws")], catch_exceptions=False, env={
        "GOALCOVER_MODEL": "fake-model", "OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": "test", **env,
    })


def test_cli_sample_json_and_report_json_carry_the_intervals(ws, tmp_path, fake_openai):
    result = cli(tmp_path, fake_openai, "score", "--sample", "20", "--json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert {k: payload[k] for k in ("judgments", "calls", "failed", "cached")} == {
        "judgments": 100, "calls": 20, "failed": 0, "cached": 0}
    assert payload["estimate"]["samples"] == 20 and payload["estimate"]["population"] == N
    report = json.loads(cli(tmp_path, fake_openai, "report", "--json").stdout)
    for row, est in zip(report["subgoals"], payload["estimate"]["subgoals"]):
        assert (row["id"], row["share"], row["ci_low"], row["ci_high"]) == (est["id"], est["share"], est["ci_low"], est["ci_high"])
    text = cli(tmp_path, fake_openai, "report").stdout
    assert "Estimated from a stratified random sample of 20 of 90" in text
    full = json.loads(cli(tmp_path, fake_openai, "score", "--json").stdout)
    assert "estimate" not in full and full["calls"] == N - 20 and full["cached"] == 100


def test_cli_budget_picks_n_from_the_dry_run_cost(ws, tmp_path, fake_openai):
    prices = {"GOALCOVER_INPUT_PRICE_PER_MTOK": "10", "GOALCOVER_OUTPUT_PRICE_PER_MTOK": "30"}
    plan = json.loads(cli(tmp_path, fake_openai, "score", "--dry-run", "--json", **prices).stdout)
    per_sample = plan["est_cost"] / N
    result = cli(tmp_path, fake_openai, "score", "--budget", f"{per_sample * 12.5:.6f}", "--json", **prices)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["estimate"]["samples"] == 12
    batch_plan = json.loads(cli(tmp_path, fake_openai, "score", "--dry-run", "--json", "--via", "batch", **prices).stdout)
    assert batch_plan["est_cost"] == pytest.approx(0.5 * plan["est_cost"] * (N - 12) / N, rel=0.2)
    sampled_plan = json.loads(cli(tmp_path, fake_openai, "score", "--dry-run", "--json", "--sample", "39", **prices).stdout)
    assert sampled_plan["sample"] == 39 and sampled_plan["calls"] == round((N - 12) * 39 / N)
    text = cli(tmp_path, fake_openai, "score", "--dry-run", "--sample", "39", "--via", "batch", **prices).stdout
    assert "stratified sample: 39 samples drawn" in text and "Batch API at 0.5" in text
    no_price = cli(tmp_path, fake_openai, "score", "--budget", "1")
    assert no_price.exit_code == 2 and "GOALCOVER_INPUT_PRICE_PER_MTOK" in no_price.stderr


def test_a_given_support_decision_replaces_the_verdict_threshold():
    """Issue 18: with weighted scores, coverage passes its own support decisions (weighted >= 3.5)."""
    from goalcover.tools.measure.estimate import estimate
    from goalcover.tools.measure.strata import SampleDesign

    design = SampleDesign(seed=0, dataset="x", strata={"a": ["s1", "s2", "s3", "s4"]}, drawn={"a": 4})
    scores = {"s1": {"S1": 4}, "s2": {"S1": 3}, "s3": {"S1": 3}, "s4": {"S1": 1}}
    plain = estimate(design, scores, ["S1"], support=4, weak_share=0.1, weak_relative=0.5)
    assert plain.subgoals[0].share == 0.25
    decided = {"s1": {"S1": False}, "s2": {"S1": True}, "s3": {"S1": True}, "s4": {"S1": False}}
    weighted = estimate(design, scores, ["S1"], support=4, weak_share=0.1, weak_relative=0.5, supports=decided)
    assert weighted.subgoals[0].share == 0.5 and weighted.subgoals[0].mean == plain.subgoals[0].mean
