"""Files and containers into a stream of raw records, in bounded memory.

What users hand us: JSONL (also gzip/zstd-compressed, also saved as `.json`), JSON arrays, CSV/TSV in
Excel's dialects, Parquet, folders of shards (Parquet or JSONL parts, as the Hugging Face Hub and trainers
write them) and folders written by Hugging Face `datasets`' `save_to_disk`. Each reader yields one
`RawRecord` (or a `Rejected` naming the place) at a time: a 1 GB JSONL or a 10⁶-row Parquet never sits in
memory whole, and no JSONL line, CSV row or JSON array element is read past the record limit
(GOALCOVER_INGEST_MAX_SAMPLE_CHARS), so a gzip bomb or a 2 GB line is refused in bounded memory. How the source was laid out (BOM, line ends, CSV dialect and header, Arrow schema, shards)
is kept in `SourceLayout`, so export can write the same container back.

The formats live one family a module: `read_json` (JSON Lines, JSON arrays), `read_csv` (CSV/TSV),
`read_arrow` (Parquet, save_to_disk); `sources` holds the shared shapes and how a path is classified and
opened. This module opens a path of any kind (`open_source`) and re-exports the names other code imports.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from goalcover.tools.core.errors import BadInput
from goalcover.tools.core.shapes import FileType
from goalcover.tools.data.read_arrow import PARQUET_BATCH_ROWS, STATE_JSON_MAX_BYTES, read_hf_folder, read_parquet
from goalcover.tools.data.read_csv import CSV_DELIMITERS, CSV_SNIFF_CHARS, is_tsv, read_csv, sniff_delimiter
from goalcover.tools.data.read_json import JSON_CHUNK_BYTES, loads, looks_like_json_lines, read_json, read_jsonl
from goalcover.tools.data.sources import (
    BINARY_SNIFF_BYTES,
    BOMS,
    COMPRESSIONS,
    DEFAULT_MAX_RECORD_CHARS,
    FILE_TYPES,
    KNOWN,
    SHAPE_KEYS,
    UTF8_MAX_BYTES,
    RawRecord,
    Rejected,
    SourceFile,
    SourceLayout,
    classify,
    file_type_of,
)

__all__ = [
    "BINARY_SNIFF_BYTES", "BOMS", "COMPRESSIONS", "CSV_DELIMITERS", "CSV_SNIFF_CHARS", "DEFAULT_MAX_RECORD_CHARS",
    "FILE_TYPES", "JSON_CHUNK_BYTES", "KNOWN", "PARQUET_BATCH_ROWS", "READERS", "SHAPE_KEYS",
    "STATE_JSON_MAX_BYTES", "UTF8_MAX_BYTES", "Opened", "RawRecord", "Rejected", "SourceFile", "SourceLayout",
    "classify", "file_type_of", "is_tsv", "loads", "looks_like_json_lines", "open_source", "read_csv",
    "read_hf_folder", "read_json", "read_jsonl", "read_parquet", "shards_of", "sniff_delimiter",
]


def _looks_like_hf(folder: Path) -> bool:
    return (folder / "state.json").is_file() and (folder / "dataset_info.json").is_file()


def shards_of(folder: Path) -> list[SourceFile]:
    """The data files of a folder of shards (searched recursively, in name order); one file type only."""
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or path.suffix.lower() in (".md", ".txt", ".lock", ".yaml", ".yml"):
            continue
        if path.name in ("dataset_info.json", "state.json", "dataset_dict.json", "dataset_infos.json"):
            continue
        try:
            files.append(classify(path))
        except BadInput:
            continue
    if not files:
        raise BadInput(f"{folder}: a folder with no data files{KNOWN}")
    kinds = {f.file_type for f in files}
    if len(kinds) > 1:
        raise BadInput(f"{folder}: the folder mixes file types ({', '.join(sorted(kinds))}); shards of one dataset share one type")
    return files



READERS = {"jsonl": read_jsonl, "json": read_json, "csv": read_csv, "parquet": read_parquet}


@dataclass
class Opened:
    """A source ready to read: its file type, its layout (filled in as it is read) and its records."""

    path: Path
    file_type: FileType
    layout: SourceLayout
    records: Iterator[RawRecord | Rejected]
    notes: list[str] = field(default_factory=list)


def open_source(path: Path, max_chars: int = DEFAULT_MAX_RECORD_CHARS) -> Opened:
    """Open a file, a compressed file, a folder of shards or a save_to_disk folder for reading.

    Raises BadInput for a missing path, an unknown type, an empty folder or mixed shard types; problems
    inside records come out of `records` as Rejected (or BadInput for a broken document). No record over
    `max_chars` characters is read into memory (JSON Lines, JSON arrays, CSV; Parquet and Arrow read in
    row batches of bounded size, a row measured before it becomes a record: see `read_arrow`)."""
    if not path.exists():
        raise BadInput(f"{path}: no such file")
    layout = SourceLayout()
    if path.is_dir():
        if (path / "dataset_dict.json").is_file():
            splits = ", ".join(sorted(p.name for p in path.iterdir() if p.is_dir()))
            raise BadInput(f"{path}: a DatasetDict folder with splits ({splits}); give one split's folder, e.g. {path / 'train'}")
        if _looks_like_hf(path):
            return Opened(path, "arrow", layout, _tag_files(read_hf_folder(path, layout, max_chars)))
        shards = shards_of(path)
        layout.container = "folder"
        layout.shards = [str(s.path.relative_to(path)) for s in shards]
        layout.compression = shards[0].compression
        return Opened(path, shards[0].file_type, layout, _chain_shards(shards, layout, max_chars))
    source = classify(path)
    if path.stat().st_size == 0:
        raise BadInput(f"{path}: no samples (the file is empty)")
    layout.compression = source.compression
    if source.file_type == "json" and _guarded_check(source):
        layout.named_json = True
        note = f"{path.name}: named .json but holds JSON Lines (one record per line); read as JSON Lines"
        return Opened(path, "jsonl", layout, _guard(read_jsonl(source, layout, max_chars), source), [note])
    return Opened(path, source.file_type, layout, _guard(_read(source, layout, max_chars), source))


def _read(source: SourceFile, layout: SourceLayout, max_chars: int) -> Iterator[RawRecord | Rejected]:
    return READERS[source.file_type](source, layout, max_chars)


def _decompression_error(source: SourceFile, exc: Exception) -> BadInput:
    kind = {"gzip": "gzip", "zstd": "zstd"}.get(source.compression or "", "")
    return BadInput(f"{source.path}: not a readable {kind} file ({exc}); is it complete and really {kind}-compressed?")


def _guarded_check(source: SourceFile) -> bool:
    try:
        return looks_like_json_lines(source)
    except Exception as exc:  # a broken compressed stream: gzip, zlib and zstandard each raise their own
        if source.compression:
            raise _decompression_error(source, exc) from None
        raise


def _guard(records: Iterator[RawRecord | Rejected], source: SourceFile) -> Iterator[RawRecord | Rejected]:
    """Turn a broken compressed stream (bad header, truncated, corrupt) into one BadInput naming the file."""
    if not source.compression:
        yield from records
        return
    try:
        yield from records
    except BadInput:
        raise
    except Exception as exc:  # gzip.BadGzipFile, EOFError, zlib.error, zstandard.ZstdError
        raise _decompression_error(source, exc) from None


def _tag_files(items: Iterator[tuple[Path, RawRecord | Rejected]]) -> Iterator[RawRecord | Rejected]:
    for path, item in items:
        if isinstance(item, Rejected):
            item.reason = f"{path.name}: {item.reason}"
        else:
            item.file = str(path)
        yield item


def _chain_shards(shards: list[SourceFile], layout: SourceLayout, max_chars: int = DEFAULT_MAX_RECORD_CHARS) -> Iterator[RawRecord | Rejected]:
    for shard in shards:
        for item in _guard(_read(shard, layout, max_chars), shard):
            if isinstance(item, Rejected):
                item.reason = f"{shard.path.name}: {item.reason}"
            else:
                item.file = str(shard.path)
            yield item

