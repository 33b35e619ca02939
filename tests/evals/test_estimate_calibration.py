"""The calibration experiment's plumbing on a small slice (these runs claim no calibration figures), and
Cochran's sample size against its textbook values."""

from __future__ import annotations

import json

import pytest

from goalcover.evals import estimate_calibration


def test_needed_n_matches_cochran():
    # p = 0.5, ±5 points, 95%: n0 = 1.96² · 0.25 / 0.0025 ≈ 384.1 -> 385 for an infinite population; the
    # finite population correction shrinks it (Cochran 1977, §4.4).
    assert estimate_calibration.needed_n(0.5, 10**9) == 385
    assert estimate_calibration.needed_n(0.5, 1000) == 278
    assert estimate_calibration.needed_n(0.1, 10**9) == 139


def test_a_small_run_writes_coverage_and_widths(tmp_path, fast_embeddings):
    result = estimate_calibration.main(["--limit", "60", "--reps", "20", "--sizes", "20,40", "--out", str(tmp_path)])
    assert result["population"] == 60 and result["full_run_calls"] == 60
    assert set(result["sizes"]) == {20, 40}
    for row in result["sizes"].values():
        assert set(row["coverage_pct"]) == {"S1", "S2", "S3", "S4", "S5"}
        assert all(0 <= c <= 100 for c in row["coverage_pct"].values())
        assert all(w >= 0 for w in row["mean_width_pts"].values())
    # More samples give narrower intervals.
    assert result["sizes"][40]["max_mean_width_pts"] < result["sizes"][20]["max_mean_width_pts"]
    saved = json.loads((tmp_path / "estimate_calibration-contracts.json").read_text())
    assert saved["population"] == 60 and "calls_saved_pct" in saved["plus_minus_5"]
    assert "in CI" in (tmp_path / "estimate_calibration-contracts.md").read_text()
    with pytest.raises(SystemExit):
        estimate_calibration.main(["--dataset", "nope"])
