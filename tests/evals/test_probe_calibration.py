"""Fitting a probe's cut points: ascending, the support cut between what the model says to pairs that
have the subgoal and to pairs that lack it, and read from the experiments' results files."""

from __future__ import annotations

import json

import pytest

from goalcover.evals import probe_calibration as cal
from goalcover.tools.judge.probe import to_verdict, weighted_from_p


def test_cut_points_put_support_between_a_compressed_models_answers():
    positives = [0.33, 0.36, 0.38, 0.41, 0.45, 0.52]
    negatives = [0.22, 0.27, 0.30, 0.31, 0.32, 0.35]
    cuts = cal.fit_cut_points(positives, negatives)
    assert all(0 < a < b < 1 for a, b in zip(cuts, cuts[1:]))
    assert cuts[2] == pytest.approx(0.325)  # Youden: all positives and 5 of 6 negatives (ties go to the lower cut)
    assert cuts[3] == pytest.approx(0.395) and cuts[0] == pytest.approx(0.305)  # the medians
    # support (verdict >= 4) now follows the model's own scale, where the defaults call nothing supported
    assert sum(to_verdict(p, cuts)[0] >= 4 for p in positives) == 6 and sum(to_verdict(p, cuts)[0] >= 4 for p in negatives) == 1
    assert not any(to_verdict(p, cal.DEFAULT_CUTS)[0] >= 4 for p in positives)
    with pytest.raises(ValueError, match="at least 2"):
        cal.fit_cut_points([0.5], negatives)


def test_calibration_reads_separation_and_corruption_results(tmp_path):
    separation = {"model": "m", "weighted": {"p_yes_relevant": [0.4, 0.5, 0.45], "p_yes_irrelevant": [0.2, 0.3, 0.25]}}
    w = lambda p: weighted_from_p(p, cal.DEFAULT_CUTS)  # noqa: E731 - stored as the run's cut points mapped them
    corruption = {"model": "m", "domains": [{"weighted": {"scores": {
        "S1": {"a": {"S1": [w(0.6), w(0.2)], "S2": [w(0.5), w(0.5)]}, "b": {"S1": [w(0.55), None]}},
        "S2": {"a": {"S1": [w(0.6), w(0.6)], "S2": [w(0.5), w(0.1)]}},
    }}}]}
    pos, neg = cal.pairs_from_corruption(corruption)
    assert pos == pytest.approx([0.6, 0.5]) and neg == pytest.approx([0.2, 0.1])  # targets only; b's failed judgment left out
    (tmp_path / "s.json").write_text(json.dumps(separation))
    (tmp_path / "c.json").write_text(json.dumps(corruption))
    report = cal.main(["--separation", str(tmp_path / "s.json"), "--corruption", str(tmp_path / "c.json"), "--out", str(tmp_path)])
    assert (report["positives"], report["negatives"], report["auc"]) == (5, 5, 1.0)
    assert report["support_accuracy"]["calibrated"] == 1.0
    assert "GOALCOVER_PROBE_THRESHOLDS" in (tmp_path / "probe_calibration-m.md").read_text()


def test_fitting_on_one_source_only_checks_the_other():
    separation = {"model": "m", "weighted": {"p_yes_relevant": [0.40, 0.42, 0.45], "p_yes_irrelevant": [0.20, 0.25, 0.30]}}
    w = lambda p: weighted_from_p(p, cal.DEFAULT_CUTS)  # noqa: E731
    noise = {"model": "m", "domains": [{"weighted": {"scores": {"S1": {str(i): {"S1": [w(0.5 + i / 100), w(0.5 + (i % 3) / 100)]} for i in range(6)}}}}]}
    report = cal.calibrate(separation, noise, fit_on="judge_separation")
    assert report["fit_on"] == ["judge_separation"] and (report["positives"], report["negatives"]) == (3, 3)
    assert 0.30 < report["cut_points"][2] < 0.40 and report["support_accuracy"]["calibrated"] == 1.0
    checked = {s["experiment"]: s for s in report["sources"]}
    assert checked["judge_separation"]["fitted_on"] and not checked["corruption"]["fitted_on"]
    assert checked["corruption"]["positives"] == 6
    with pytest.raises(ValueError, match="no such results file"):
        cal.calibrate(separation, None, fit_on="corruption")
