"""Real-world file kinds that broke dataset tools (tests/data/hunt/README.md): each gets what the README
says, through the CLI's own path (ingest into a workspace, then export)."""

from __future__ import annotations

import asyncio
import json
import math
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from goalcover.tools.judge import scoring
from goalcover.tools.data.ingest import ingest_file, search
from goalcover.tools.core.errors import BadInput
from goalcover.tools.data.export import export
from goalcover.tools.core.goal import save_goal
from goalcover.tools.data.index import parse_where
from goalcover.tools.data.records import read_samples
from goalcover.tools.core.shapes import Goal, Subgoal
from goalcover.tools.core.workspace import Workspace
from tests.conftest import HUNT


def ingest_and_export(tmp_path: Path, name: str, **options):
    """Ingest a hunt file into a fresh workspace and export it under the same name; (result, export path, ws root)."""
    with Workspace.open(tmp_path / "ws") as ws:
        result = ingest_file(ws, HUNT / name, **options)
        out = tmp_path / "out" / name
        export(ws, out)
        metadata = ws.index.collection().get(include=["metadatas"])["metadatas"]
    return result, out, metadata


@pytest.mark.parametrize("name", ["bom_crlf.jsonl", "csv_semicolon.csv", "csv_trailing_empty_columns.csv", "jsonl_named_json.json",
                                  "tsv_quoted_cells.tsv"])
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


def test_tsv_quotes_are_plain_characters_in_the_judged_text():
    samples = read_samples(HUNT / "tsv_quoted_cells.tsv").samples
    assert [s.record["input"] for s in samples] == [
        '"Know thyself"', "5'9\" tall", 'Great screen, 13.3" display, but the battery lasts only 4 hours.'
    ]
    assert 'Input: "Know thyself"' in samples[0].text


def test_a_tsv_cell_starting_with_a_quote_is_read_literally(tmp_path):
    source = tmp_path / "quotes.tsv"
    source.write_text('instruction\toutput\n"Quote" this\tit is "quoted\n', encoding="utf-8")
    assert read_samples(source).samples[0].record == {"instruction": '"Quote" this', "output": 'it is "quoted'}


def test_reasoning_is_judged_so_records_differing_only_in_it_are_distinct(tmp_path):
    samples = read_samples(HUNT / "reasoning_only_differs.jsonl").samples
    assert len({s.content_hash for s in samples}) == 3
    assert "Try small primes: 221/13 = 17 exactly" in samples[0].text
    assert samples[0].text.index("[reasoning]") < samples[0].text.index("No. 221 = 13 × 17.")
    with Workspace.open(tmp_path / "ws") as ws:
        assert ingest_file(ws, HUNT / "reasoning_only_differs.jsonl").exact_duplicates == 0


@pytest.mark.parametrize("record, expected", [
    ({"instruction": "Add 2 and 2.", "reasoning": "2 + 2 is 4.", "output": "4"}, "[reasoning] 2 + 2 is 4."),
    ({"prompt": "Add 2 and 2.", "thinking": "Two pairs.", "completion": "4"}, "[reasoning] Two pairs."),
    ({"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello", "reasoning": "Greet back."}]},
     "assistant: [reasoning] Greet back.\nHello"),
    ({"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "<think>Add them.</think>4"}]},
     "<think>Add them.</think>4"),
])
def test_every_way_of_writing_reasoning_reaches_the_judged_text(tmp_path, record, expected):
    source = tmp_path / "r.jsonl"
    source.write_text(json.dumps(record) + "\n", encoding="utf-8")
    assert expected in read_samples(source).samples[0].text


def test_legacy_openai_functions_reach_the_judged_text_like_tools(tmp_path):
    source = tmp_path / "functions.jsonl"
    functions = [{"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    record = {"messages": [{"role": "user", "content": "Weather in Oslo?"},
                           {"role": "assistant", "content": None, "function_call": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}],
              "functions": functions}
    source.write_text(json.dumps(record) + "\n", encoding="utf-8")
    text = read_samples(source).samples[0].text
    assert "functions: " in text and '"get_weather"' in text and '"city"' in text.split("user:")[0]


@pytest.mark.parametrize("record", [
    {"prompt": "Say hi.", "chosen": "Hi!", "rejected": "No."},
    {"chosen": "Human: hi Assistant: hello", "rejected": "Human: hi Assistant: go away"},
])
def test_preference_data_is_named_as_such(tmp_path, record):
    source = tmp_path / "dpo.jsonl"
    source.write_text(json.dumps(record) + "\n", encoding="utf-8")
    with pytest.raises(BadInput, match=r"line 1: preference data \(a 'chosen' and a 'rejected' answer"):
        read_samples(source)


def test_typed_csv_columns_match_where_filters(tmp_path):
    with Workspace.open(tmp_path / "ws") as ws:
        ingest_file(ws, HUNT / "csv_typed_columns.csv")

        def difficulties(*clauses):
            return sorted(h.fields["difficulty"] for h in search(ws, "math", k=10, where=parse_where(list(clauses))))

        assert difficulties("difficulty=3") == [3]
        assert difficulties("difficulty>=3") == [3, 4]
        assert difficulties("difficulty!=3") == [2, 4]
        assert difficulties("verified=true") == [2, 4]
        assert difficulties("year<2024", "verified=true") == [2]
    out = tmp_path / "out.csv"
    with Workspace.open(tmp_path / "ws") as ws:
        export(ws, out)
    assert out.read_bytes() == (HUNT / "csv_typed_columns.csv").read_bytes()


def test_nul_in_text_counts_in_lengths_and_token_estimates(tmp_path):
    from goalcover.tools.data.ingest import describe
    from goalcover.tools.core.store import TEXT_CHARS
    from goalcover.tools.core.tokens import CHARS_PER_TOKEN

    samples = read_samples(HUNT / "nul_escape.jsonl").samples
    lengths = sorted(len(s.text) for s in samples)
    assert all("\x00" in s.text for s in samples)
    with Workspace.open(tmp_path / "ws") as ws:
        result = ingest_file(ws, HUNT / "nul_escape.jsonl")
        summary = describe(ws)
        stored = ws.store.db.execute(f"SELECT {TEXT_CHARS} FROM samples").fetchall()  # what the length-bias check reads
    assert (result.chars.min, result.chars.max) == (lengths[0], lengths[-1])
    assert (summary["chars"]["min"], summary["chars"]["max"]) == (lengths[0], lengths[-1])
    assert result.est_tokens.max == math.ceil(lengths[-1] / CHARS_PER_TOKEN)
    assert sorted(n for (n,) in stored) == lengths


def test_a_users_own_source_column_is_what_where_source_means(tmp_path):
    source = tmp_path / "own.jsonl"
    rows = [{"instruction": f"Task {i}", "output": "Done.", "source": "web" if i % 2 else "books", "line": i} for i in range(4)]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with Workspace.open(tmp_path / "ws") as ws:
        ingest_file(ws, source)
        assert sorted(h.fields["line"] for h in search(ws, "task", k=10, where=parse_where(["source=web"]))) == [1, 3]
        assert [h.fields["line"] for h in search(ws, "task", k=10, where=parse_where(["line=2"]))] == [2]
        assert len(search(ws, "task", k=10, where=parse_where(["goalcover.source=own.jsonl"]))) == 4
        assert len(search(ws, "task", k=10, where=parse_where(["goalcover.line=1"]))) == 1


def test_every_hunt_file_is_covered():
    names = {p.name for p in HUNT.iterdir() if p.name != "README.md"}
    source = Path(__file__).read_text(encoding="utf-8")
    assert {n for n in names if n not in source} == set()
    assert re.search(r"\| lone_surrogate\.jsonl \|", (HUNT / "README.md").read_text())
