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

from goalcover.tools.data import read_arrow, read_json
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


def test_a_parquet_page_too_big_to_decode_is_refused_from_its_header(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    source = tmp_path / "bomb.parquet"
    pq.write_table(pa.Table.from_pylist([alpaca(i, f"{i}" + "z" * 100_000) for i in range(4)]), source, compression="zstd", use_dictionary=False)
    assert source.stat().st_size < 10_000
    monkeypatch.setattr(read_arrow, "DECODE_MAX_BYTES", 300_000)
    with pytest.raises(BadInput, match=r"bomb\.parquet: rows 1–4 \(row group 1\), column 'output': a page decodes to 400,\d{3} bytes, over the 300,000 GoalCover decompresses at once"):
        read_samples(source)
    monkeypatch.setattr(read_arrow, "DECODE_MAX_BYTES", 500_000)
    assert len(read_samples(source).samples) == 4


def test_a_parquet_page_whose_values_average_over_the_limit_is_refused_unread(tmp_path):
    """One value a page: the row group's average passes (ten short rows beside it), the page's does not."""
    import pyarrow.parquet as pq

    source = tmp_path / "one_long.parquet"
    rows = [alpaca(i, "x" * 6000 if i == 5 else "short") for i in range(10)]
    pq.write_table(pa.Table.from_pylist(rows), source, use_dictionary=False, data_page_size=1, write_batch_size=1)
    with pytest.raises(BadInput, match=r"column 'output': a page holds 1 values in 6,0\d\d bytes, so a record there is over the limit of 1,000 characters"):
        read_samples(source, max_sample_chars=1000)
    assert len(read_samples(source, max_sample_chars=10_000).samples) == 10


def test_parquet_batches_are_sized_by_the_densest_page_not_the_average(tmp_path, monkeypatch):
    """Forty 50 KB values among 3,000 short rows, in pages of about 10 KB: by the average (about 700 bytes a
    row) a batch of 2,048 rows would hold all forty, 2 MB; by the densest page it holds 1 MB / 50 KB rows."""
    import pyarrow.parquet as pq

    monkeypatch.setattr(read_arrow, "ARROW_BATCH_BYTES", 1 << 20)
    source = tmp_path / "skewed.parquet"
    rows = [alpaca(i, "y" * 50_000 if 1000 <= i < 1040 else "short") for i in range(3000)]
    pq.write_table(pa.Table.from_pylist(rows), source, use_dictionary=False, data_page_size=10_000, write_batch_size=1)
    [rows_a_batch] = read_arrow._batch_rows(source, pq.ParquetFile(source).metadata, 2_000_000)
    assert 10 <= rows_a_batch <= 21
    assert [s.record["instruction"] for s in read_samples(source).samples] == [f"Task {i}" for i in range(3000)]


def test_a_parquet_row_over_the_limit_is_rejected_by_its_row_number_before_it_becomes_python(tmp_path, monkeypatch):
    """Row groups of 4 rows, decoded a row at a time (a tiny batch budget); the 1,500-character message
    in row 4 is measured inside its nested `messages` column, rejected by number, and the rest kept in order."""
    import pyarrow.parquet as pq

    monkeypatch.setattr(read_arrow, "ARROW_BATCH_BYTES", 50)
    chat = lambda i, text: {"messages": [{"role": "user", "content": f"Question {i}"}, {"role": "assistant", "content": text}]}
    rows = [chat(i, "y" * 1500 if i == 4 else f"Answer {i}") for i in range(1, 7)]
    source = tmp_path / "chats.parquet"
    pq.write_table(pa.Table.from_pylist(rows), source, row_group_size=4)
    with pytest.raises(BadInput, match=r"chats\.parquet: row 4: the record holds 1,5\d\d bytes, over the limit of 300 characters"):
        read_samples(source, max_sample_chars=300)
    kept = read_samples(source, max_sample_chars=300, skip_invalid=True)
    assert [s.record["messages"][0]["content"] for s in kept.samples] == [f"Question {i}" for i in (1, 2, 3, 5, 6)]
    assert [s.line for s in kept.samples] == [1, 2, 3, 5, 6]


def test_a_save_to_disk_row_over_the_limit_is_rejected_naming_its_file(tmp_path):
    datasets = pytest.importorskip("datasets")
    saved = tmp_path / "saved"
    datasets.Dataset.from_list([alpaca(1), alpaca(2, "w" * 5000), alpaca(3)]).save_to_disk(str(saved))
    kept = read_samples(saved, max_sample_chars=1000, skip_invalid=True)
    assert [s.record["instruction"] for s in kept.samples] == ["Task 1", "Task 3"]
    assert kept.rejected[0].reason.startswith("data-00000-of-00001.arrow: row 2: the record holds 5,0")


@pytest.mark.parametrize("compression", ["zstd", "lz4"])
def test_a_compressed_arrow_stream_is_refused_before_a_batch_too_big_is_decompressed(tmp_path, monkeypatch, compression):
    """save_to_disk writes streams uncompressed (memory-mapped, never copied); a compressed one is decoded a
    batch at a time, so a batch that would decode past the cap is refused from its metadata."""
    datasets = pytest.importorskip("datasets")
    saved = tmp_path / "saved"
    datasets.Dataset.from_list([alpaca(i, "v" * 20_000) for i in range(10)]).save_to_disk(str(saved))
    stream = saved / "data-00000-of-00001.arrow"
    table = pa.ipc.open_stream(stream.read_bytes()).read_all()
    with pa.OSFile(str(stream), "wb") as f, pa.ipc.new_stream(f, table.schema, options=pa.ipc.IpcWriteOptions(compression=compression)) as w:
        w.write_table(table)
    assert stream.stat().st_size < 20_000
    assert len(read_samples(saved).samples) == 10
    monkeypatch.setattr(read_arrow, "DECODE_MAX_BYTES", 100_000)
    with pytest.raises(BadInput, match=r"data-00000-of-00001\.arrow: message 2 \(record batch\) holds [\d,]+ compressed bytes that decode to 200,\d{3}, over the 100,000"):
        read_samples(saved)


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


def test_a_parquet_bomb_ends_in_exit_2_in_bounded_memory(tmp_path):
    """A 256 MiB value among 4,096 short rows, in a 27 KB Parquet file: its row group's average passes, the
    page holding it does not (read from the page headers). Before, the row group was decoded and the value turned into Python
    before it was found too long (peak RSS 1,955 MB; 7.45 GB for a 1.2 GB value); after, 142 MB."""
    import pyarrow.parquet as pq

    source = tmp_path / "outlier.parquet"
    outputs = pa.array([f"Answer {i}" for i in range(4095)] + ["b" * (256 * MB)], pa.large_string())
    pq.write_table(pa.table({"instruction": [f"Task {i}" for i in range(4096)], "output": outputs}), source, compression="zstd")
    del outputs
    assert source.stat().st_size < 100_000
    code, peak_mb, message = ingest_peak(tmp_path, source)
    assert code == 2, message
    assert "column 'output': a page of" in message and "a compression bomb? It was not read" in message
    assert peak_mb < 512, f"peak RSS {peak_mb:.0f} MB"


def test_a_parquet_row_repeating_one_dictionary_entry_is_measured_not_copied_out(tmp_path):
    """587 bytes of Parquet (no Arrow schema stored): one row whose messages are 50,000 references to one
    100 KB dictionary entry. Decoded into plain strings they are 5 GB: before, peak RSS 6.76 GB; read
    dictionary-encoded, the row is measured and rejected."""
    import numpy as np
    import pyarrow.parquet as pq

    n = 50_000
    content = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array(["x" * 100_000]))
    role = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array(["user"]))
    messages = pa.ListArray.from_arrays(pa.array([0, n], pa.int32()), pa.StructArray.from_arrays([role, content], ["role", "content"]))
    source = tmp_path / "repeated.parquet"
    pq.write_table(pa.table({"messages": messages}), source, compression="zstd", store_schema=False)
    assert source.stat().st_size < 2000
    code, peak_mb, message = ingest_peak(tmp_path, source)
    assert code == 2, message
    assert "row 1: the record holds 5,000,200,000 bytes, over the limit of 2,000,000 characters" in message
    assert peak_mb < 512, f"peak RSS {peak_mb:.0f} MB"


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


@pytest.mark.parametrize("name", ["repeated.parquet", "repeated.jsonl.gz"])
def test_a_source_expanding_past_the_ratio_is_stopped_as_a_bomb(tmp_path, monkeypatch, name):
    """Every record under the limit, but 100 copies of a 100 KB text in a few KB: past the floor (made
    small here) the characters read pass 200 times the bytes on disk, and the reading stops."""
    import pyarrow.parquet as pq

    from goalcover.tools.data import records

    monkeypatch.setattr(records, "EXPANSION_FLOOR_CHARS", 1_000_000)
    rows = [alpaca(i, "p" * 100_000) for i in range(100)]
    source = tmp_path / name
    if name.endswith(".parquet"):
        pq.write_table(pa.Table.from_pylist(rows), source, compression="zstd")
    else:
        source.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode(), compresslevel=9))
    assert source.stat().st_size < 50_000
    with pytest.raises(BadInput, match=r"characters, over 200 times the [\d,]+ bytes on disk \(GOALCOVER_INGEST_MAX_EXPANSION\): a compression bomb"):
        read_samples(source)
    monkeypatch.setattr(records, "EXPANSION_FLOOR_CHARS", 20_000_000)
    assert len(read_samples(source).samples) == 100


def test_a_bomb_of_rejected_lines_is_stopped_too(tmp_path, monkeypatch):
    """200,000 broken lines in 1 KB of gzip: with --skip-invalid each one's reason is written to the
    rejected log, so the reasons count against the same ratio. Before, one good line and 10 M broken ones
    in 19 KB of gzip left a 1.2 GB rejected log in the workspace."""
    from goalcover.tools.data import records

    monkeypatch.setattr(records, "EXPANSION_FLOOR_CHARS", 1_000_000)
    source = tmp_path / "broken.jsonl.gz"
    source.write_bytes(gzip.compress(b"x\n" * 200_000, compresslevel=9))
    with pytest.raises(BadInput, match=r"the samples and rejections so far hold 1,000,\d+ characters"):
        read_samples(source, skip_invalid=True)


def test_a_number_too_long_for_python_is_rejected_with_a_plain_reason(tmp_path):
    source = tmp_path / "bigint.jsonl"
    source.write_text(json.dumps(alpaca(1)) + '\n{"instruction": "x", "output": "y", "n": ' + "9" * 5000 + "}\n", encoding="utf-8")
    kept = read_samples(source, skip_invalid=True)
    assert len(kept.samples) == 1
    assert kept.rejected[0].reason == "line 2: a number with more than 4,300 digits, too long to be read as an integer"


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
