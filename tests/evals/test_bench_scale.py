"""bench_scale's synthetic datasets: real fields, recombined, every sample distinct."""

from __future__ import annotations

import json

import pytest

from goalcover.evals.bench_scale import ALPACA_FILES, DEFAULT_DATASETS, build_dataset


def test_the_scale_dataset_recombines_real_fields_into_distinct_samples(tmp_path):
    target = tmp_path / "scale.jsonl"
    build_dataset(DEFAULT_DATASETS, 2000, target)
    records = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 2000 and len({r["id"] for r in records}) == 2000
    assert len({(r["instruction"], r["input"], r["output"]) for r in records}) == 2000
    outputs = {json.loads(line)["output"] for name in ALPACA_FILES for line in (DEFAULT_DATASETS / name).read_text(encoding="utf-8").splitlines()}
    assert all(r["output"] in outputs for r in records)  # real responses, not generated text
    build_dataset(DEFAULT_DATASETS, 2000, again := tmp_path / "again.jsonl")
    assert again.read_bytes() == target.read_bytes()  # the same seed draws the same dataset


def test_asking_for_more_samples_than_pairs_is_refused(tmp_path):
    with pytest.raises(ValueError, match="pairs"):
        build_dataset(DEFAULT_DATASETS, 10**9, tmp_path / "x.jsonl")
