"""What a source is: the shapes every reader shares (a raw record, a rejected one, the source's layout) and
how a path is classified and opened (file type and compression from its name; gzip/zstd streams).

The readers for each format family (`read_json`, `read_csv`, `read_arrow`) and `readers.open_source` build
on this module; export reads `FILE_TYPES`, `COMPRESSIONS` and `SourceLayout` from it.
"""

from __future__ import annotations

import base64
import gzip
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel

from goalcover.tools.core.errors import BadInput
from goalcover.tools.core.shapes import FileType

BINARY_SNIFF_BYTES = 8192
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd"}
FILE_TYPES: dict[str, FileType] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
KNOWN = "; GoalCover reads .jsonl, .json, .csv, .tsv and .parquet files (also .gz/.zst), folders of such shards, and Hugging Face save_to_disk folders"
# Keys that mark a record's shape; a CSV header must name at least one of them.
SHAPE_KEYS = ("messages", "conversations", "instruction", "prompt", "text")
# One record is read whole only up to this many characters (GOALCOVER_INGEST_MAX_SAMPLE_CHARS, passed in by
# `open_source`); a longer line, row or array element is refused without being read into memory.
DEFAULT_MAX_RECORD_CHARS = 2_000_000
UTF8_MAX_BYTES = 4  # bytes one character takes at most in UTF-8: the byte bound that cannot cut a kept record
BOMS = {b"\xff\xfe\x00\x00": "UTF-32", b"\x00\x00\xfe\xff": "UTF-32", b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}


@dataclass
class RawRecord:
    """One record as read: `line` is the 1-based line (JSONL, CSV, JSON) or row number (Parquet, Arrow)
    within `file`; `raw` is its original text where it has one (the JSONL line, the JSON array element,
    or the CSV row's cells as a JSON list) so export can write it back unchanged."""

    line: int
    record: dict[str, Any]
    raw: str | None = None
    file: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class Rejected:
    """A record that cannot be used, with a reason that names its line and field."""

    line: int
    reason: str


class SourceLayout(BaseModel):
    """How a source was laid out, so export writes the same container: compression, shards, the JSONL
    byte conventions, the CSV dialect and verbatim header, the Arrow schema (base64 IPC)."""

    container: str = "file"  # file | folder | hf
    compression: str | None = None  # gzip | zstd
    shards: list[str] = []  # paths relative to the folder, in reading order
    bom: bool = False
    newline: str = "\n"
    final_newline: bool = True
    csv_delimiter: str | None = None
    csv_header: list[str] | None = None
    csv_quoting: str | None = None  # "none" for .tsv: quotes are literal characters, not quoting
    arrow_schema: str | None = None
    named_json: bool = False  # JSON Lines in a file named .json

    def schema(self):
        """The source's Arrow schema (pyarrow.Schema), or None."""
        if not self.arrow_schema:
            return None
        import pyarrow as pa

        return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(self.arrow_schema)))


def schema_b64(schema) -> str:
    """A pyarrow.Schema as base64 of its IPC serialisation (what `SourceLayout.arrow_schema` holds)."""
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


# --- what a path is --------------------------------------------------------------------------------

@dataclass
class SourceFile:
    """A single readable file: its type and compression, from its name (`x.jsonl.gz` → jsonl, gzip)."""

    path: Path
    file_type: FileType
    compression: str | None


def classify(path: Path, forced: FileType | None = None) -> SourceFile:
    """Name → (file type, compression); BadInput naming the suffix for anything else."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    inner = suffixes[-2] if compression and len(suffixes) > 1 else (suffixes[-1] if suffixes and not compression else "")
    if forced:
        return SourceFile(path, forced, compression)
    if inner not in FILE_TYPES:
        shown = "".join(path.suffixes[-2:]) if compression else path.suffix
        raise BadInput(f"{path}: unknown file type {shown or '(no extension)'!r}{KNOWN}")
    if compression and FILE_TYPES[inner] == "parquet":
        raise BadInput(f"{path}: Parquet compresses itself; give the .parquet file, not a compressed copy")
    return SourceFile(path, FILE_TYPES[inner], compression)


def file_type_of(path: Path, forced: str | None = None) -> FileType:
    """The file type a name stands for (`data.jsonl.gz` → "jsonl"); BadInput for unknown names."""
    return classify(path, forced).file_type  # type: ignore[arg-type]


def open_bytes(source: SourceFile) -> IO[bytes]:
    """The file's bytes as a binary stream, decompressed (gzip, zstd) as its name says; iterable by line."""
    if source.compression == "gzip":
        return gzip.open(source.path, "rb")
    if source.compression == "zstd":
        import zstandard

        # Buffered, so lines can be iterated (zstandard's reader only reads).
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(source.path.open("rb"), closefd=True))
    return source.path.open("rb")


def check_text(path: Path, head: bytes) -> None:
    """BadInput for a file that is not UTF-8 text: a UTF-16/UTF-32 file (by its byte-order mark, or by
    the NUL byte in every other position that UTF-16 gives ASCII text) is named as such."""
    for bom, encoding in BOMS.items():
        if head.startswith(bom):
            raise BadInput(f"{path}: the file is {encoding} (it starts with a {encoding} byte-order mark); save it as UTF-8")
    sample = head[:BINARY_SNIFF_BYTES]
    if len(sample) >= 8 and b"\x00" in sample:
        even, odd = sample[0::2], sample[1::2]
        if odd.count(0) > 0.8 * len(odd) and not even.count(0) or even.count(0) > 0.8 * len(even) and not odd.count(0):
            raise BadInput(f"{path}: the file looks like UTF-16 text without a byte-order mark; save it as UTF-8")
    if b"\x00" in sample:
        raise BadInput(f"{path}: not a text/JSON file (it contains NUL bytes); is it binary or compressed?")



def record_too_long(where: str, max_chars: int) -> str:
    """The message for a record over `max_chars` characters at `where` (e.g. "line 3"), which was not read."""
    return (
        f"{where}: the record is over the limit of {max_chars:,} characters (GOALCOVER_INGEST_MAX_SAMPLE_CHARS); "
        "it was not read into memory"
    )

