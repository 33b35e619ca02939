"""Reading real fine-tuning files, and refusing broken ones with a message that names the place."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from goalcover.tools.core.errors import BadInput
from goalcover.tools.data.records import read_samples
from tests.conftest import BAD, SFT

SFT_FILES = {
    "contracts_alpaca.jsonl": (446, "alpaca", "contracts-legalsum01"),
    "humaneval_prompt_completion.jsonl": (164, "prompt-completion", "HumanEval-0"),
    "mbpp_alpaca.jsonl": (974, "alpaca", "mbpp-1"),
    "pubmedqa_messages.jsonl": (1000, "messages", "pubmedqa-21645374"),
    "selfinstruct_alpaca.jsonl": (252, "alpaca", "user_oriented_task_0-0"),
}


@pytest.mark.parametrize("name", sorted(SFT_FILES))
def test_shared_sft_files_read_whole(name):
    count, shape, first_id = SFT_FILES[name]
    result = read_samples(SFT / name)
    assert (len(result.samples), result.shape, result.samples[0].id) == (count, shape, first_id)
    assert result.rejected == [] and result.file_type == "jsonl"
    # Split on "\n" only: PubMed abstracts hold characters that str.splitlines() also breaks at.
    lines = (SFT / name).read_bytes().decode("utf-8").rstrip("\n").split("\n")
    # The record and the raw line are kept exactly, so export can write them back unchanged.
    assert [s.raw for s in result.samples] == lines
    assert result.samples[-1].record == json.loads(lines[-1])
    assert len({s.id for s in result.samples}) == count


def test_known_values_reach_the_text_view():
    mbpp = read_samples(SFT / "mbpp_alpaca.jsonl").samples[0]
    assert mbpp.text.startswith("Instruction: Write a function to find the minimum cost path")
    assert "Input: Your code should pass these tests:" in mbpp.text and "Response: R = 3" in mbpp.text
    pubmed = read_samples(SFT / "pubmedqa_messages.jsonl").samples[0]
    assert pubmed.text.startswith("system: You answer biomedical research questions")
    assert "\n\nassistant: " in pubmed.text
    humaneval = read_samples(SFT / "humaneval_prompt_completion.jsonl").samples[0]
    assert "def has_close_elements" in humaneval.text and "Completion:" in humaneval.text
    app = read_samples(SFT / "selfinstruct_alpaca.jsonl").samples[0].record["app"]
    assert app == "Grammarly"


def test_csv_json_and_parquet_of_real_records(tmp_path):
    records = [json.loads(line) for line in (SFT / "contracts_alpaca.jsonl").read_text().splitlines()[:25]]
    with (tmp_path / "c.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    (tmp_path / "c.json").write_text(json.dumps(records, indent=2), encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "c.parquet")
    for name in ("c.csv", "c.json", "c.parquet"):
        result = read_samples(tmp_path / name)
        assert [s.id for s in result.samples] == [r["id"] for r in records], name
        assert result.samples[3].record == records[3], name
        assert result.shape == "alpaca"
    # Records of a JSON array know the line they start on.
    assert read_samples(tmp_path / "c.json").samples[1].line == 8


def test_sharegpt_and_text_shapes(tmp_path):
    rows = [json.loads(line) for line in (SFT / "pubmedqa_messages.jsonl").read_text().splitlines()[:5]]
    names = {"system": "system", "user": "human", "assistant": "gpt"}
    share = [{"id": r["id"], "conversations": [{"from": names[m["role"]], "value": m["content"]} for m in r["messages"]]} for r in rows]
    (tmp_path / "s.jsonl").write_text("\n".join(json.dumps(r) for r in share))
    result = read_samples(tmp_path / "s.jsonl")
    assert result.shape == "sharegpt" and result.samples[0].text.startswith("system: ")
    assert "\n\nassistant: " in result.samples[0].text
    texts = [{"text": r["messages"][1]["content"]} for r in rows]
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(r) for r in texts))
    result = read_samples(tmp_path / "t.jsonl")
    assert result.shape == "text" and result.samples[2].text == texts[2]["text"]
    assert all(s.id.startswith("h-") for s in result.samples)


def test_format_override_validates_every_record_as_that_shape():
    with pytest.raises(BadInput, match=r"line 1: field 'prompt' is missing"):
        read_samples(SFT / "mbpp_alpaca.jsonl", "prompt-completion")


def test_content_hash_ids_are_stable_and_unique_for_exact_duplicates():
    first = read_samples(BAD / "utf8_bom_crlf.jsonl")
    again = read_samples(BAD / "utf8_bom_crlf.jsonl")
    assert [s.id for s in first.samples] == [s.id for s in again.samples]
    assert len(first.samples) == 2 and first.samples[1].id == first.samples[0].id + "-2"
    assert first.samples[0].record["instruction"] == "Summarize the clause."  # BOM and CR gone


BAD_CASES = {
    "malformed_line.jsonl": r"line 2: not valid JSON",
    "truncated_last_line.jsonl": r"line 2: not valid JSON",
    "invalid_utf8.jsonl": r"line 2: not valid UTF-8 \(byte 0xE9",
    "empty.jsonl": r"no samples",
    "only_blank_lines.jsonl": r"no samples",
    "binary.jsonl": r"not a text/JSON file",
    "missing_output.jsonl": r"line 2: field 'output' is missing",
    "wrong_types.jsonl": r"line 1: field 'instruction': .*string",
    "mixed_shapes.jsonl": r"line 2: the shape changes from alpaca .* to messages",
    "unknown_shape.jsonl": r"line 1: no known shape .*alpaca.*messages.*sharegpt.*prompt-completion.*text",
    "messages_bad_role.jsonl": r"line 1: field 'messages\[0\]\.role'",
    "messages_not_list.jsonl": r"line 1: field 'messages': .*list",
    "sharegpt_missing_value.jsonl": r"line 1: field 'conversations\[0\]\.value' is missing",
    "json_array_broken.json": r"line 1: not valid JSON",
    "json_not_array.json": r"expected a JSON array of records",
    "csv_broken_quote.csv": r"line 2: broken CSV",
    "csv_no_header.csv": r"line 1: the CSV header .* names no known column",
    "nan_values.jsonl": r"line 1: NaN is not valid JSON",
    "duplicate_ids.jsonl": r"line 2: id 'a1' is used again \(first on line 1\)",
    "deeply_nested.json": r"nested too deeply",
    "not_parquet.parquet": r"not a readable Parquet file",
}


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_bad_files_get_one_clear_message_naming_the_file(name):
    with pytest.raises(BadInput) as caught:
        read_samples(BAD / name)
    message = str(caught.value)
    assert message.startswith(str(BAD / name))
    assert __import__("re").search(BAD_CASES[name], message), message


def test_every_bad_file_is_covered():
    files = {p.name for p in BAD.iterdir() if p.name != "README.md"}
    assert files == set(BAD_CASES) | {"utf8_bom_crlf.jsonl", "huge_sample.jsonl"}


def test_huge_sample_is_kept_with_a_warning_and_a_limit_refuses_it():
    result = read_samples(BAD / "huge_sample.jsonl")
    assert len(result.samples) == 1 and len(result.samples[0].raw) > 1_000_000
    assert "long sample" in result.warnings[0]
    with pytest.raises(BadInput, match=r"line 1: the sample has 1,100,061 characters, over the limit"):
        read_samples(BAD / "huge_sample.jsonl", max_sample_chars=1_000_000)


def test_skip_invalid_keeps_valid_rows_and_reports_the_rest():
    result = read_samples(BAD / "malformed_line.jsonl", skip_invalid=True)
    assert len(result.samples) == 2 and [r.line for r in result.rejected] == [2]
    result = read_samples(BAD / "duplicate_ids.jsonl", skip_invalid=True)
    assert [s.id for s in result.samples] == ["a1"] and "used again" in result.rejected[0].reason


def test_directories_and_missing_files(tmp_path):
    with pytest.raises(BadInput, match="a folder with no data files"):
        read_samples(tmp_path)
    with pytest.raises(BadInput, match="no such file"):
        read_samples(tmp_path / "nope.jsonl")
    (tmp_path / "data.txt").write_text("hello")
    with pytest.raises(BadInput, match=r"unknown file type '\.txt'"):
        read_samples(tmp_path / "data.txt")
