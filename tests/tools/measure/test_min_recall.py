"""--min-recall: the cascade's recall target set apart from its precision target."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from typer.testing import CliRunner

from goalcover.tools.core.errors import BadInput
from goalcover.tools.measure.ppi import cascade_quality, thresholds
from goalcover.tools.measure.predict import predict
from goalcover.tools.measure.sampled import score_sampled
from goalcover.ui.cli import app
from tests.support.judges import CONTRACT_PATTERNS, keyword_judge
from tests.support.workspaces import contracts_workspace, prepared_contracts

N = 160
runner = CliRunner()


def test_a_lower_recall_target_raises_t_low_and_keeps_t_high():
    rng = np.random.default_rng(0)
    p = rng.random(400)
    y = rng.random(400) < p  # calibrated: P(y) = p
    low_strict, high = thresholds(y, p, 0.9)
    low_loose, high_loose = thresholds(y, p, 0.9, min_recall=0.7)
    assert high_loose == high and low_loose > low_strict  # fewer samples left to the judge
    lost = y[p <= low_loose].sum() / y.sum()
    assert lost <= 0.3 and y[p <= low_strict].sum() / y.sum() <= 0.1
    _, recall_loose, band_loose = cascade_quality(y, p, low_loose, high)
    _, recall_strict, band_strict = cascade_quality(y, p, low_strict, high)
    assert recall_loose >= 0.7 and recall_strict >= 0.9 and band_loose < band_strict


def test_predict_reports_the_recall_target_and_meets_it_on_the_judged_sample(tmp_path, fake_openai):
    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    with contracts_workspace(tmp_path, fake_openai, N) as ws:
        asyncio.run(score_sampled(ws, n=80))
        with pytest.raises(BadInput, match="--min-recall"):
            predict(ws, min_recall=0.8)
        with pytest.raises(BadInput, match="--min-recall"):
            predict(ws, min_precision=0.9, min_recall=1.5)
        strict = predict(ws, min_precision=0.9)
        loose = predict(ws, min_precision=0.9, min_recall=0.6)
        assert loose.min_recall == 0.6 and strict.min_recall is None
        used = [t for t in loose.targets if not t.chance and t.est_recall is not None]
        assert used
        for t in used:
            assert t.est_recall >= 0.6
        pending = lambda r: sum(t.decided["pending"] for t in r.targets if not t.chance)  # noqa: E731
        assert pending(loose) <= pending(strict)


def test_cli_min_recall_needs_min_precision_and_a_range_before_any_call(tmp_path, fake_openai):
    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    _, env = prepared_contracts(tmp_path, "ws", fake_openai, N)
    env = {k: v for k, v in env.items() if k.startswith(("GOALCOVER_", "OPENAI_"))}
    before = fake_openai.stats()["completions"]
    alone = runner.invoke(app, ["score", "--sample", "40", "--predict", "--min-recall", "0.8"], env=env)
    assert alone.exit_code == 2 and "give it with --min-precision" in alone.output
    off = runner.invoke(app, ["score", "--sample", "40", "--predict", "--min-precision", "0.9", "--min-recall", "1.2"], env=env)
    assert off.exit_code == 2 and "--min-recall 1.2" in off.output
    assert fake_openai.stats()["completions"] == before
    got = runner.invoke(app, ["score", "--sample", "80", "--predict", "--min-precision", "0.9", "--min-recall", "0.7", "--json"], env=env)
    assert got.exit_code == 0, got.output
    import json

    assert json.loads(got.stdout)["predict"]["min_recall"] == 0.7
