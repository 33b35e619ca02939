"""Reading files in bounded memory whatever they hold (issue 27: a gzip bomb, a 2 GB line, a quadratic JSON
array, save_to_disk folders that point outside themselves, UTF-16)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

from goalcover.tools.data import read_json
from goalcover.tools.core.errors import BadInput
from goalcover.tools.data.records import read_samples

MB = 1 << 20
GOALCOVER = Path(sys.executable).with_name("goalcover")


def alpaca(i: int, output: str = "Done.") -> dict:
    return {"instruction": f"Task {i}", "input": "", "output": output}


# --- records over the limit are refused without being read whole --------------------------------------

@pytest.mark.parametrize("name, content", [
    ("long.jsonl", lambda big: json.dumps(alpaca(1)) + "\n" + json.dumps(alpaca(2, big)) + "\n" + json.dumps(alpaca(3)) + "\n"),
    ("long.json", lambda big: json.dumps([alpaca(1), alpaca(2, big), alpaca(3)], indent=1)),
])
def test_a_record_over_the_limit_is_rejected_naming_its_line_and_the_rest_is_read(tmp_path, name, content):
    source = tmp_path / name
    source.write_text(content("x" * 50_000), encoding="utf-8")
    with pytest.raises(BadInput, match=r"line \d+: .*over the limit of 1,000 .*\(GOALCOVER_INGEST_MAX_SAMPLE_CHARS\)"):
        read_samples(source, max_sample_chars=1000)
    kept = read_samples(source, max_sample_chars=1000, skip_invalid=True)
    assert [s.record["instruction"] for s in kept.samples] == ["Task 1", "Task 3"]
    assert len(kept.rejected) == 1


def test_a_csv_row_over_the_limit_is_an_error_naming_its_line(tmp_path):
    source = tmp_path / "long.csv"
    source.write_text('instruction,output\nTask 1,Done.\nTask 2,"' + "many\nlines\n" * 5000 + '"\n', encoding="utf-8")
    with pytest.raises(BadInput, match=r"long\.csv: line 3: the record is over the limit of 1,000 characters"):
        read_samples(source, max_sample_chars=1000)


def test_a_parquet_row_group_over_the_limit_is_refused_before_it_is_decoded(tmp_path):
    import pyarrow.parquet as pq

    source = tmp_path / "bomb.parquet"
    pq.write_table(pa.Table.from_pylist([alpaca(1, "x" * 500_000), alpaca(2, "y" * 500_000)]), source, compression="zstd")
    assert source.stat().st_size < 10_000
    with pytest.raises(BadInput, match=r"bomb\.parquet: rows 1–2 \(row group 1\) hold 1,000,\d+ bytes uncompressed, over the limit of 1,000 characters"):
        read_samples(source, max_sample_chars=1000)
    assert len(read_samples(source).samples) == 2


PEAK_SCRIPT = textwrap.dedent("""
    import resource, subprocess, sys
    done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(done.returncode, peak_kib, done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "", sep="\\t")
""")


def ingest_peak(tmp_path: Path, source: Path) -> tuple[int, float, str]:
    """`goalcover ingest SOURCE` in a child process: (exit code, its peak RSS in MB, its last stderr line)."""
    out = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(GOALCOVER), "ingest", str(source), "--workspace", str(tmp_path / "ws")],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout
    code, peak_kib, message = out.rstrip("\n").split("\t")
    return int(code), int(peak_kib) / 1024, message


def test_a_gzip_bomb_ends_in_exit_2_in_bounded_memory(tmp_path):
    """1.5 GB of one line from a 1.6 MB .jsonl.gz (gzip members of 1 MiB each, concatenated): read up to
    the record limit only. Before, the whole line was read (peak RSS above 1.5 GB)."""
    member = gzip.compress(b"a" * MB, compresslevel=9)
    bomb = tmp_path / "bomb.jsonl.gz"
    with bomb.open("wb") as f:
        f.write(gzip.compress(b'{"text": "'))
        for _ in range(1536):
            f.write(member)
    assert bomb.stat().st_size < 4 * MB
    code, peak_mb, message = ingest_peak(tmp_path, bomb)
    assert code == 2, message
    assert "line 1: the record is over the limit of 2,000,000 characters" in message
    assert peak_mb < 1024, f"peak RSS {peak_mb:.0f} MB"


@pytest.mark.parametrize("name, head, expected", [
    ("huge_line.jsonl", json.dumps(alpaca(1)) + '\n{"text": "', "line 2: the record is over the limit"),
    # the first element is longer than the binary sniff, so the sparse zeros are met as the second element
    ("huge_element.json", "[" + json.dumps(alpaca(1, "p" * 9000)) + ',\n{"text": "', "line 2: record 2: the record is over the limit"),
])
def test_a_2_gb_record_ends_in_exit_2_in_bounded_memory(tmp_path, name, head, expected):
    """A sparse 2 GB file (no disk used): a good first record, then one that never ends. Before, the
    line (or the whole JSON file) was read into memory (peak RSS 7.9 GB for a 2 GB line)."""
    source = tmp_path / name
    with source.open("wb") as f:
        f.write(head.encode())
        f.truncate(2 << 30)
    code, peak_mb, message = ingest_peak(tmp_path, source)
    assert code == 2, message
    assert expected in message
    assert peak_mb < 1024, f"peak RSS {peak_mb:.0f} MB"


# --- JSON arrays: streamed, element by element --------------------------------------------------------

TRICKY = [
    {"instruction": 'brackets ] } [ { and "quotes" in a string', "output": "a, b, c"},
    {"instruction": "escapes \\\" \\\\ \\n end with a backslash \\\\", "output": "ünïcödé — 训练 🙂"},
    {"instruction": "nested", "output": "x", "meta": {"tags": ["a", {"b": [1, 2, {"c": "]"}]}], "n": -1.5e3}},
    {"instruction": "", "output": "", "empty": {}, "list": []},
]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, MB])
def test_json_array_elements_are_found_across_any_read_boundary(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(read_json, "JSON_CHUNK_BYTES", chunk)
    source = tmp_path / "tricky.json"
    text = "\ufeff[\n" + ",\n".join(json.dumps(r, ensure_ascii=False, indent=i % 2 or None) for i, r in enumerate(TRICKY)) + "\n]\n"
    source.write_text(text, encoding="utf-8")
    samples = read_samples(source).samples
    assert [s.record for s in samples] == TRICKY
    assert [json.loads(s.raw) for s in samples] == TRICKY
    assert [s.raw for s in samples] == [json.dumps(r, ensure_ascii=False, indent=i % 2 or None) for i, r in enumerate(TRICKY)]
    lines = [s.line for s in samples]
    assert lines[0] == 2 and lines == sorted(lines) and len(set(lines)) == 4


@pytest.mark.parametrize("text, message", [
    ('[{"instruction": "a", "output": "b"}', "line 1: the JSON array is not closed"),
    ('[\n{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": "d"}]', "line 3: expected ',' or ']' after record 1"),
    ('[\n{"instruction": "a", "output": "b"},\n{"instruction": "c", "output": d}]', r"line 3: not valid JSON \(Expecting value"),
    ('[\n{"instruction": "a", "output": "unterminated', r"line 2: not valid JSON \(Unterminated string"),
    ('{"data": [{"instruction": "a", "output": "b"}]}', "line 1: expected a JSON array of records, got an object with keys 'data'"),
    ('[\n{"instruction": "a", "output": "b"},\n7]', "line 3: record 2 is a int, expected an object"),
    ('[\n{"instruction": "a", "output": "b"}},\n' + '{"x": 1},\n' * 1000 + "]", r"line 2: not valid JSON \(Expecting value"),
    ("  \n ", r"no samples \(the file is empty\)"),
])
def test_a_broken_json_array_names_its_line(tmp_path, text, message):
    source = tmp_path / "broken.json"
    source.write_text(text, encoding="utf-8")
    with pytest.raises(BadInput, match=message):
        read_samples(source)


# --- save_to_disk folders stay inside themselves ------------------------------------------------------

def save_to_disk_folder(folder: Path, filenames, arrow_name: str = "data-00000-of-00001.arrow") -> Path:
    """A minimal `datasets` save_to_disk folder (an Arrow stream and its state.json) naming `filenames`."""
    folder.mkdir(parents=True)
    table = pa.Table.from_pylist([alpaca(1), alpaca(2)])
    with pa.ipc.new_stream(str(folder / arrow_name), table.schema) as writer:
        writer.write_table(table)
    (folder / "dataset_info.json").write_text("{}", encoding="utf-8")
    state = filenames if isinstance(filenames, str) else json.dumps({"_data_files": [{"filename": n} for n in filenames]})
    (folder / "state.json").write_text(state, encoding="utf-8")
    return folder


def test_a_save_to_disk_folder_reads_its_own_files(tmp_path):
    folder = save_to_disk_folder(tmp_path / "saved", ["data-00000-of-00001.arrow"])
    assert len(read_samples(folder).samples) == 2


@pytest.mark.parametrize("filenames, message", [
    (["../../outside.arrow"], "is not inside the folder"),
    (["../outside.arrow"], "is not inside the folder"),
    (["/etc/passwd"], "is not inside the folder"),
    (["link.arrow"], "leads outside the folder"),
    ([7], "a data file name must be a non-empty string"),
    (["a/" * 5000 + "x.arrow"], "too long or too deeply nested"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"_data_files": "data.arrow"}', "string indices must be integers"),
])
def test_a_save_to_disk_state_naming_anything_outside_is_a_clear_error(tmp_path, filenames, message):
    outside = save_to_disk_folder(tmp_path / "elsewhere", ["data-00000-of-00001.arrow"], arrow_name="outside.arrow")
    folder = save_to_disk_folder(tmp_path / "a" / "saved", filenames)
    (folder / "link.arrow").symlink_to(outside / "outside.arrow")
    (tmp_path / "a" / "outside.arrow").write_bytes((outside / "outside.arrow").read_bytes())
    with pytest.raises(BadInput, match=rf"saved/state\.json: not a readable save_to_disk state \(.*{message}"):
        read_samples(folder)


# --- encodings --------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv"])
@pytest.mark.parametrize("encoding, named", [("utf-16", "UTF-16"), ("utf-32", "UTF-32"), ("utf-16-le", "UTF-16 text without a byte-order mark")])
def test_a_utf16_file_is_named_as_such(tmp_path, suffix, encoding, named):
    source = tmp_path / f"wide{suffix}"
    text = {".jsonl": json.dumps(alpaca(1)) + "\n", ".json": json.dumps([alpaca(1)]), ".csv": "instruction,output\nTask,Done.\n"}[suffix]
    source.write_bytes(text.encode(encoding))
    with pytest.raises(BadInput, match=rf"wide{suffix}: the file (is|looks like) {named}.*save it as UTF-8"):
        read_samples(source)
