"""The containers users have: compressed files, folders of shards, save_to_disk folders, TSV; each is
read in full and exported back in the same container."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from goalcover.tools.data.ingest import ingest_file
from goalcover.tools.core.errors import BadInput
from goalcover.tools.data.export import export
from goalcover.tools.data.records import read_samples
from goalcover.tools.core.workspace import Workspace
from tests.conftest import SFT, head_lines

N = 40


@pytest.fixture
def contracts(tmp_path) -> Path:
    return head_lines(SFT / "contracts_alpaca.jsonl", tmp_path / "contracts.jsonl", N)


def round_trip(tmp_path: Path, source: Path, out_name: str):
    with Workspace.open(tmp_path / "ws") as ws:
        result = ingest_file(ws, source)
        exported = export(ws, tmp_path / "out" / out_name)
    return result, Path(exported.path)


@pytest.mark.parametrize("suffix, compress, decompress", [
    (".jsonl.gz", lambda b: gzip.compress(b), gzip.decompress),
    (".jsonl.zst", lambda b: zstandard.ZstdCompressor().compress(b), lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b)),
])
def test_compressed_jsonl_reads_and_exports_compressed(tmp_path, contracts, suffix, compress, decompress):
    packed = tmp_path / f"contracts{suffix}"
    packed.write_bytes(compress(contracts.read_bytes()))
    result, out = round_trip(tmp_path, packed, f"clean{suffix}")
    assert (result.samples, result.file_type) == (N, "jsonl")
    assert decompress(out.read_bytes()) == contracts.read_bytes()
    with pytest.raises(BadInput, match=rf"name the export with {suffix}"):
        with Workspace.open(tmp_path / "ws") as ws:
            export(ws, tmp_path / "out" / "plain.jsonl")


def test_tsv_is_read_with_tabs_and_written_back_with_tabs(tmp_path):
    records = [json.loads(line) for line in (SFT / "selfinstruct_alpaca.jsonl").read_text().splitlines()[:12]]
    rows = ["instruction\tinput\toutput"] + [
        "\t".join(r[k].replace("\t", " ").replace("\n", " ") for k in ("instruction", "input", "output")) for r in records
    ]
    source = tmp_path / "si.tsv"
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result, out = round_trip(tmp_path, source, "clean.tsv")
    assert (result.samples, result.file_type) == (12, "csv")
    assert out.read_text().splitlines()[0] == "instruction\tinput\toutput"
    assert [s.record for s in read_samples(out).samples] == [s.record for s in read_samples(source).samples]


def test_folder_of_jsonl_shards_comes_back_shard_for_shard(tmp_path, contracts):
    lines = contracts.read_bytes().splitlines(keepends=True)
    folder = tmp_path / "shards" / "data"
    folder.mkdir(parents=True)
    (folder / "train-00000-of-00002.jsonl").write_bytes(b"".join(lines[:25]))
    (folder / "train-00001-of-00002.jsonl").write_bytes(b"".join(lines[25:]))
    (folder.parent / "README.md").write_text("# a dataset card\n")
    result, out = round_trip(tmp_path, folder.parent, "clean")
    assert result.samples == N
    for shard in folder.iterdir():
        assert (out / "data" / shard.name).read_bytes() == shard.read_bytes()


def test_folder_of_parquet_shards_reads_every_row(tmp_path, contracts):
    records = [json.loads(line) for line in contracts.read_text().splitlines()]
    folder = tmp_path / "pq"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(records[:15]), folder / "part-0.parquet")
    pq.write_table(pa.Table.from_pylist(records[15:]), folder / "part-1.parquet")
    read = read_samples(folder)
    assert [s.record["id"] for s in read.samples] == [r["id"] for r in records]
    assert {s.part for s in read.samples} == {"part-0.parquet", "part-1.parquet"}
    result, out = round_trip(tmp_path, folder, "clean")
    assert pq.read_table(out / "part-1.parquet").to_pylist() == records[15:]


def test_mixed_shard_types_are_refused(tmp_path, contracts):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(contracts, folder / "a.jsonl")
    pq.write_table(pa.Table.from_pylist([{"text": "x"}]), folder / "b.parquet")
    with pytest.raises(BadInput, match="mixes file types"):
        read_samples(folder)


def test_hugging_face_save_to_disk_folder_reads_and_exports(tmp_path, contracts):
    datasets = pytest.importorskip("datasets")
    records = [json.loads(line) for line in contracts.read_text().splitlines()]
    saved = tmp_path / "hf"
    datasets.Dataset.from_list(records).save_to_disk(str(saved))
    result, out = round_trip(tmp_path, saved, "clean")
    assert (result.samples, result.file_type) == (N, "arrow")
    back = datasets.load_from_disk(str(out))
    assert back.to_list() == records and back.features == datasets.load_from_disk(str(saved)).features


def test_a_dataset_dict_folder_asks_for_one_split(tmp_path, contracts):
    datasets = pytest.importorskip("datasets")
    records = [json.loads(line) for line in contracts.read_text().splitlines()]
    datasets.DatasetDict({"train": datasets.Dataset.from_list(records)}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(BadInput, match=r"a DatasetDict folder with splits \(train\); give one split's folder"):
        read_samples(tmp_path / "dd")


@pytest.mark.parametrize("name, data, message", [
    ("bad.jsonl.gz", b"not gzip", r"bad\.jsonl\.gz: not a readable gzip file"),
    ("cut.jsonl.gz", gzip.compress(b'{"text": "a"}\n' * 50, mtime=0)[:-12], r"cut\.jsonl\.gz: not a readable gzip file \(Compressed file ended"),
    ("bad.jsonl.zst", b"not zstd", r"bad\.jsonl\.zst: not a readable zstd file"),
    ("key.jsonl", '{"text": "x", "\\udc00": 1}\n'.encode(), r"key\.jsonl: line 1: the key .* holds a lone surrogate"),
    ("deep.jsonl", ('{"text": "x", "a": ' + "[" * 3000 + "]" * 3000 + "}\n").encode(), r"deep\.jsonl: line 1: nested too deeply"),
], ids=["bad-gzip", "cut-gzip", "bad-zstd", "surrogate-key", "deep-nesting"])
def test_broken_containers_and_values_get_one_message_naming_the_file(tmp_path, name, data, message):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(BadInput, match=message):
        read_samples(tmp_path / name)
