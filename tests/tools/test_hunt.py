"""Real-world file kinds that broke dataset tools (tests/data/hunt/README.md): each gets what the README
says, through the CLI's own path (ingest into a workspace, then export)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from goalcover.tools import scoring
from goalcover.tools.dataset import ingest_file, search
from goalcover.tools.errors import BadInput
from goalcover.tools.export import export
from goalcover.tools.goal import save_goal
from goalcover.tools.index import parse_where
from goalcover.tools.ingest import read_samples
from goalcover.tools.models import Goal, Subgoal
from goalcover.tools.workspace import Workspace
from tests.conftest import HUNT


def ingest_and_export(tmp_path: Path, name: str, **options):
    """Ingest a hunt file into a fresh workspace and export it under the same name; (result, export path, ws root)."""
    with Workspace.open(tmp_path / "ws") as ws:
        result = ingest_file(ws, HUNT / name, **options)
        out = tmp_path / "out" / name
        export(ws, out)
        metadata = ws.index.collection().get(include=["metadatas"])["metadatas"]
    return result, out, metadata


@pytest.mark.parametrize("name", ["bom_crlf.jsonl", "csv_semicolon.csv", "csv_trailing_empty_columns.csv", "jsonl_named_json.json"])
def test_files_come_back_byte_for_byte(tmp_path, name):
    result, out, _ = ingest_and_export(tmp_path, name)
    assert out.read_bytes() == (HUNT / name).read_bytes()
    assert result.samples == len(read_samples(HUNT / name).samples)


def test_excel_trailing_empty_columns_are_ignored_for_judging_and_kept_for_export(tmp_path):
    result, out, _ = ingest_and_export(tmp_path, "csv_trailing_empty_columns.csv")
    samples = read_samples(HUNT / "csv_trailing_empty_columns.csv").samples
    assert result.samples == 3 and result.format == "alpaca"
    assert all(set(s.record) == {"instruction", "input", "output"} for s in samples)
    assert out.read_text(encoding="utf-8-sig").splitlines()[0] == "instruction,input,output,,"


def test_semicolon_csv_is_sniffed_with_its_multiline_cell(tmp_path):
    read = read_samples(HUNT / "csv_semicolon.csv")
    assert read.layout.csv_delimiter == ";" and read.layout.bom and read.layout.newline == "\r\n"
    assert "keep\r\nthe premises" in read.samples[0].record["input"]
    assert read.samples[1].record["input"] == "Fees; may change."


def test_duplicate_csv_header_is_an_error_naming_the_column():
    with pytest.raises(BadInput, match=r"csv_duplicate_header\.csv: line 1: the CSV header names 'output' twice \(columns 3 and 4\)"):
        read_samples(HUNT / "csv_duplicate_header.csv")


def test_long_csv_cell_is_kept_with_a_warning(tmp_path):
    result, out, _ = ingest_and_export(tmp_path, "csv_long_cell.csv")
    assert result.samples == 2 and any("long sample (150," in w for w in result.warnings)
    assert max(len(s.text) for s in read_samples(HUNT / "csv_long_cell.csv").samples) > 150_000


@pytest.mark.parametrize(
    "name, key",
    [("metadata_empty_key.jsonl", ""), ("metadata_dollar_key.jsonl", "$schema"), ("metadata_reserved_key.jsonl", "chroma:document")],
)
def test_keys_the_index_refuses_are_namespaced_and_kept_for_export(tmp_path, name, key):
    result, out, metadata = ingest_and_export(tmp_path, name)
    records = [json.loads(line) for line in (HUNT / name).read_text().splitlines()]
    assert result.samples == len(records) and any(key in r for r in records)
    assert out.read_bytes() == (HUNT / name).read_bytes()
    assert any("field." + key in m for m in metadata) and not any(key in m for m in metadata)


def test_values_the_index_cannot_hold_are_left_out_of_it_with_a_warning_and_kept_for_export(tmp_path):
    result, out, metadata = ingest_and_export(tmp_path, "metadata_hazards.jsonl")
    assert result.samples == 3 and out.read_bytes() == (HUNT / "metadata_hazards.jsonl").read_bytes()
    first = next(m for m in metadata if m.get("field.ok") is True)
    assert first["field.weight"] == 0.5 and "field.big" not in first and "field.tags" not in first
    assert any(w.startswith("field 'big'") and "beyond 64 bits" in w for w in result.warnings)


def test_a_big_integer_stays_exact_and_out_of_the_index(tmp_path):
    result, out, metadata = ingest_and_export(tmp_path, "metadata_bigint.jsonl")
    big = [json.loads(line) for line in (HUNT / "metadata_bigint.jsonl").read_text().splitlines()]
    assert 2**70 in [v for r in big for v in r.values()]
    assert out.read_bytes() == (HUNT / "metadata_bigint.jsonl").read_bytes()
    assert not any(isinstance(v, float) and v > 2**63 for m in metadata for v in m.values())
    assert any("beyond 64 bits" in w for w in result.warnings)


def test_parquet_image_bytes_are_stored_and_exported_as_they_came(tmp_path):
    result, out, _ = ingest_and_export(tmp_path, "parquet_image_bytes.parquet")
    assert result.samples == 2
    original, exported = pq.read_table(HUNT / "parquet_image_bytes.parquet"), pq.read_table(out)
    assert exported.schema == original.schema and exported.equals(original)


def test_lone_surrogate_names_its_line_and_skip_invalid_ingests_the_rest(tmp_path):
    with pytest.raises(BadInput, match=r"lone_surrogate\.jsonl: line 3: field 'output': holds a lone surrogate"):
        read_samples(HUNT / "lone_surrogate.jsonl")
    with Workspace.open(tmp_path / "ws") as ws:
        result = ingest_file(ws, HUNT / "lone_surrogate.jsonl", skip_invalid=True)
        assert (result.samples, result.invalid) == (2, 1)
        assert ws.store.count_samples() == 2


def test_sharegpt_system_prompt_and_tools_reach_the_judged_text():
    samples = read_samples(HUNT / "sharegpt_system_tools.jsonl").samples
    assert samples[0].text.startswith("system: You summarise lease clauses.")
    second = samples[1].text
    assert second.startswith("system: Use tools when needed.\n\ntools: [{\"name\": \"lookup\"}]")
    assert 'assistant [tool call]: {"name": "lookup"' in second and "tool result: {\"result\": \"Deposit" in second


def test_assistant_tool_calls_with_null_content_reach_the_judged_text():
    text = read_samples(HUNT / "tool_calls_null_content.jsonl").samples[0].text
    assert '[tool call] get_clause({"contract": 12, "clause": "notice"})' in text
    assert "tool result (call_1): Notice period: 30 days." in text
    assert text.startswith("tools: ") and '"get_clause"' in text.split("\n\n")[0]


def test_duplicate_json_key_is_a_warning_naming_line_and_key(tmp_path):
    result, _, _ = ingest_and_export(tmp_path, "duplicate_json_keys.jsonl")
    assert result.warnings == ["line 1: the key 'output' is written twice in one object; the last value is used"]


def test_jsonl_saved_as_json_is_read_as_json_lines():
    read = read_samples(HUNT / "jsonl_named_json.json")
    assert read.file_type == "jsonl" and len(read.samples) == 3 and "JSON Lines" in read.warnings[0]


def test_non_ascii_file_name_ingests(tmp_path):
    result, out, _ = ingest_and_export(tmp_path, "训练数据.jsonl")
    assert result.samples == 3 and out.read_bytes() == (HUNT / "训练数据.jsonl").read_bytes()


def test_a_users_score_field_never_meets_the_judges_score(tmp_path, fake_openai):
    goal = Goal(text="define legal terms", subgoals=[Subgoal(id="S1", title="Defines", description="Defines a legal term.")])
    with Workspace.open(tmp_path / "ws", model="fake-model", base_url=fake_openai.base_url, api_key="test") as ws:
        ingest_file(ws, HUNT / "field_named_like_score.jsonl")
        save_goal(ws, goal)
        asyncio.run(scoring.score(ws))
        scoring.index_scores(ws)
        got = ws.index.collection().get(include=["metadatas"])
        judged = dict(ws.store.db.execute("SELECT sample_id, score FROM judgments").fetchall())
        records = {s.id: s.record for s in ws.store.samples()}
        assert len(got["ids"]) == len(judged) == 2
        for sample_id, meta in zip(got["ids"], got["metadatas"]):
            assert meta["field.score_S1"] == records[sample_id]["score_S1"]  # the user's own field, untouched
            assert meta["score_S1"] == judged[sample_id]  # the judge's score
            assert records[sample_id]["score_S1"] in (1, 5)
        users_fives = search(ws, "define", k=5, where=parse_where(["field.score_S1=5"]))
        assert [h.fields["score_S1"] for h in users_fives] == [5]


def test_every_hunt_file_is_covered():
    names = {p.name for p in HUNT.iterdir() if p.name != "README.md"}
    source = Path(__file__).read_text(encoding="utf-8")
    assert {n for n in names if n not in source} == set()
    assert re.search(r"\| lone_surrogate\.jsonl \|", (HUNT / "README.md").read_text())
