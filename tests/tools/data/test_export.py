"""Export writes the user's own file back: byte for byte for JSONL, record for record otherwise."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from goalcover.tools.data.ingest import ingest_file
from goalcover.tools.data.export import export
from goalcover.tools.data.records import read_samples
from goalcover.tools.core.workspace import Workspace
from tests.conftest import SFT
from tests.tools.data.test_records import SFT_FILES


@pytest.mark.parametrize("name", sorted(SFT_FILES))
def test_every_shared_file_round_trips_byte_for_byte(name, tmp_path, fast_embeddings):
    with Workspace.open(tmp_path / "ws") as ws:
        ingest_file(ws, SFT / name)
        result = export(ws, tmp_path / "out" / name)
    assert result.written == SFT_FILES[name][0] and result.dropped == result.synthetic == 0
    assert (tmp_path / "out" / name).read_bytes() == (SFT / name).read_bytes()
    manifest = json.loads(Path(result.manifest).read_text())
    assert Path(result.manifest).name == name.removesuffix(".jsonl") + ".manifest.json"
    assert manifest["counts"]["written"] == result.written and manifest["shape"] == SFT_FILES[name][1]


def test_csv_json_and_parquet_come_back_record_for_record(tmp_path, fast_embeddings):
    records = [json.loads(line) for line in (SFT / "selfinstruct_alpaca.jsonl").read_text().splitlines()[:30]]
    with (tmp_path / "s.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    (tmp_path / "s.json").write_text(json.dumps(records), encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "s.parquet")
    for name in ("s.csv", "s.json", "s.parquet"):
        with Workspace.open(tmp_path / f"ws-{name}") as ws:
            ingest_file(ws, tmp_path / name)
            export(ws, tmp_path / "out" / name)
        back = [s.record for s in read_samples(tmp_path / "out" / name).samples]
        assert back == records, name
    assert pq.read_schema(tmp_path / "out" / "s.parquet") == pq.read_schema(tmp_path / "s.parquet")
