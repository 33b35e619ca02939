"""Files and containers into a stream of raw records, in bounded memory.

What users hand us: JSONL (also gzip/zstd-compressed, also saved as `.json`), JSON arrays, CSV/TSV in
Excel's dialects, Parquet, folders of shards (Parquet or JSONL parts, as the Hugging Face Hub and trainers
write them) and folders written by Hugging Face `datasets`' `save_to_disk`. Each reader yields one
`RawRecord` (or a `Rejected` naming the place) at a time: a 1 GB JSONL or a 10⁶-row Parquet never sits in
memory whole. How the source was laid out (BOM, line ends, CSV dialect and header, Arrow schema, shards)
is kept in `SourceLayout`, so export can write the same container back.
"""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel

from goalcover.tools.errors import BadInput
from goalcover.tools.models import FileType

BINARY_SNIFF_BYTES = 8192
CSV_SNIFF_CHARS = 65536
CSV_DELIMITERS = ",;\t|"
PARQUET_BATCH_ROWS = 2048
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

csv.field_size_limit(2**31 - 1)  # no 128 KiB cap: a long sample is kept (with a warning), as in JSONL


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
    arrow_schema: str | None = None
    named_json: bool = False  # JSON Lines in a file named .json

    def schema(self):
        """The source's Arrow schema (pyarrow.Schema), or None."""
        if not self.arrow_schema:
            return None
        import pyarrow as pa

        return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(self.arrow_schema)))


def _schema_b64(schema) -> str:
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


def _open(source: SourceFile) -> IO[bytes]:
    if source.compression == "gzip":
        return gzip.open(source.path, "rb")
    if source.compression == "zstd":
        import zstandard

        # Buffered, so lines can be iterated (zstandard's reader only reads).
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(source.path.open("rb"), closefd=True))
    return source.path.open("rb")


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


# --- readers -----------------------------------------------------------------------------------------

def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (write null or a number)")


class _Pairs:
    """`object_pairs_hook` that notes keys written twice in one object (JSON keeps the last silently)."""

    def __init__(self) -> None:
        self.duplicates: list[str] = []

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(pairs)
        if len(out) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen and key not in self.duplicates:
                    self.duplicates.append(key)
                seen.add(key)
        return out


def loads(text: str) -> tuple[Any, list[str]]:
    """Parse one JSON text strictly: NaN/Infinity refused, deep nesting refused; returns the value and the
    keys some object in it wrote twice. Raises ValueError (json.JSONDecodeError is one) with the reason."""
    pairs = _Pairs()
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=pairs), pairs.duplicates
    except RecursionError:
        raise ValueError("nested too deeply to be a training record") from None


def _duplicate_warning(where: str, keys: list[str]) -> list[str]:
    if not keys:
        return []
    named = ", ".join(repr(k) for k in keys)
    return [f"{where}: the key {named} is written twice in one object; the last value is used"]


def _check_binary(path: Path, head: bytes) -> None:
    if b"\x00" in head[:BINARY_SNIFF_BYTES]:
        raise BadInput(f"{path}: not a text/JSON file (it contains NUL bytes); is it binary or compressed?")


def _decode_line(lineno: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"line {lineno}: not valid UTF-8 (byte 0x{raw[exc.start]:02X} at column {exc.start + 1}); save the file as UTF-8"
        ) from None


def read_jsonl(source: SourceFile, layout: SourceLayout) -> Iterator[RawRecord | Rejected]:
    """One record per line; BOM, CRLF and a missing final newline are noted in `layout` for export."""
    path = source.path
    with _open(source) as f:
        lineno = 0
        for raw_line in f:
            lineno += 1
            if lineno == 1:
                _check_binary(path, raw_line)
                if raw_line.startswith(b"\xef\xbb\xbf"):
                    layout.bom = True
                    raw_line = raw_line[3:]
                if raw_line.endswith(b"\r\n"):
                    layout.newline = "\r\n"
            layout.final_newline = raw_line.endswith(b"\n")
            raw_line = raw_line.removesuffix(b"\n").removesuffix(b"\r")
            if not raw_line.strip():
                continue
            try:
                line = _decode_line(lineno, raw_line)
                value, duplicates = loads(line)
            except json.JSONDecodeError as exc:
                yield Rejected(lineno, f"line {lineno}: not valid JSON ({exc.msg}, column {exc.colno})")
                continue
            except ValueError as exc:
                reason = str(exc)
                yield Rejected(lineno, reason if reason.startswith("line ") else f"line {lineno}: {reason}")
                continue
            if not isinstance(value, dict):
                yield Rejected(lineno, f"line {lineno}: expected a JSON object, got {type(value).__name__}")
                continue
            yield RawRecord(lineno, value, raw=line, warnings=_duplicate_warning(f"line {lineno}", duplicates))


def looks_like_json_lines(source: SourceFile) -> bool:
    """Whether a .json file is really JSON Lines: its first line alone is a whole JSON object with a key
    that marks a record's shape (a JSON document that is one object is never a dataset we read)."""
    with _open(source) as f:
        first = f.readline(1 << 24)
    try:
        text = first.decode("utf-8-sig").strip()
        value, _ = loads(text)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return False
    return isinstance(value, dict) and text.startswith("{") and bool(set(SHAPE_KEYS) & set(value))


def read_json(source: SourceFile, layout: SourceLayout) -> Iterator[RawRecord | Rejected]:
    """A JSON array of records (read whole: arrays are rarely large), or JSON Lines saved as .json."""
    path = source.path
    with _open(source) as f:
        data = f.read()
    _check_binary(path, data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        lineno = data.count(b"\n", 0, exc.start) + 1
        raise BadInput(f"{path}: line {lineno}: not valid UTF-8 (byte 0x{data[exc.start]:02X}); save the file as UTF-8") from None
    pos = _skip_ws(text, 0)
    if pos >= len(text):
        raise BadInput(f"{path}: no samples (the file is empty)")
    if text[pos] != "[":
        try:
            value, _ = loads(text)
        except ValueError:
            value = None
        got = f"an object with keys {', '.join(map(repr, list(value)[:5]))}" if isinstance(value, dict) else "something else"
        raise BadInput(f"{path}: line 1: expected a JSON array of records, got {got}; for one record per line use .jsonl")
    pairs = _Pairs()
    decoder = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=pairs)
    pos = _skip_ws(text, pos + 1)
    number = 0
    while pos < len(text) and text[pos] != "]":
        number += 1
        lineno = text.count("\n", 0, pos) + 1
        pairs.duplicates = []
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})") from None
        except RecursionError:
            raise BadInput(f"{path}: line {lineno}: record {number} is nested too deeply to be a training record") from None
        except ValueError as exc:
            raise BadInput(f"{path}: line {lineno}: {exc}") from None
        if isinstance(value, dict):
            yield RawRecord(lineno, value, raw=text[pos:end], warnings=_duplicate_warning(f"line {lineno}", pairs.duplicates))
        else:
            yield Rejected(lineno, f"line {lineno}: record {number} is a {type(value).__name__}, expected an object")
        pos = _skip_ws(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
        elif pos < len(text) and text[pos] != "]":
            lineno = text.count("\n", 0, pos) + 1
            raise BadInput(f"{path}: line {lineno}: expected ',' or ']' after record {number}")
    if pos >= len(text):
        raise BadInput(f"{path}: line {text.count(chr(10)) + 1}: the JSON array is not closed (file truncated?)")


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def sniff_delimiter(sample: str, path: Path) -> str:
    """The CSV delimiter among , ; tab | — detected by CleverCSV's data-consistency measure (van den
    Burg et al., 2019), which handles Excel's `;` exports and quoted multi-line cells."""
    if path.suffix.lower() == ".tsv" or path.name.lower().endswith((".tsv.gz", ".tsv.zst")):
        return "\t"
    from clevercsv import Detector

    try:
        dialect = Detector().detect(sample, delimiters=list(CSV_DELIMITERS))
    except Exception:  # CleverCSV gives up on some odd inputs: fall back to the comma
        dialect = None
    return dialect.delimiter if dialect is not None and dialect.delimiter in CSV_DELIMITERS else ","


def _csv_header(path: Path, header: list[str], delimiter: str) -> list[str]:
    """The header, stripped; unnamed columns (Excel's trailing `,,`) are allowed, duplicates are not."""
    names = [h.strip() for h in header]
    seen: dict[str, int] = {}
    for n, name in enumerate(names, start=1):
        if not name:
            continue
        if name in seen:
            raise BadInput(
                f"{path}: line 1: the CSV header names {name!r} twice (columns {seen[name]} and {n}); "
                "rename one so no column is lost"
            )
        seen[name] = n
    if not set(SHAPE_KEYS) & set(seen):
        shown = ", ".join(repr(h) for h in header[:4])
        named = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}[delimiter]
        raise BadInput(
            f"{path}: line 1: the CSV header ({shown}, split on the {named} {delimiter!r} found by sniffing) names no "
            "known column; the first row must be a header naming the columns of one shape: alpaca (instruction, "
            "input, output), messages, sharegpt (conversations), prompt-completion (prompt, completion), text"
        )
    return names


def read_csv(source: SourceFile, layout: SourceLayout) -> Iterator[RawRecord | Rejected]:
    """CSV/TSV: delimiter sniffed, BOM and CRLF handled, multi-line quoted cells, no field-size cap.

    Unnamed columns (an Excel export's `instruction,input,output,,`) are left out of the record that is
    judged and kept, with every cell, in the row's raw cells for export."""
    path = source.path
    with _open(source) as binary:
        head = binary.read(BINARY_SNIFF_BYTES)
        _check_binary(path, head)
        stream = io.BufferedReader(_Prefixed(head, binary))  # type: ignore[arg-type]
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        layout.bom = head.startswith(b"\xef\xbb\xbf")
        try:
            sample = text.read(CSV_SNIFF_CHARS)
        except UnicodeDecodeError as exc:
            raise BadInput(f"{path}: not valid UTF-8 near the start (byte 0x{exc.object[exc.start]:02X}); save the file as UTF-8") from None
        if not sample.strip():
            raise BadInput(f"{path}: no samples (the file is empty)")
        delimiter = sniff_delimiter(sample, path)
        layout.csv_delimiter = delimiter
        layout.newline = "\r\n" if "\r\n" in sample.split("\n", 1)[0] + "\n" else "\n"
        reader = csv.reader(_Chain(sample, text), delimiter=delimiter, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise BadInput(f"{path}: no samples (the file is empty)")
            names = _csv_header(path, header, delimiter)
            layout.csv_header = header
            row_start = reader.line_num + 1
            for row in reader:
                lineno, row_start = row_start, reader.line_num + 1
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(names):
                    yield Rejected(lineno, f"line {lineno}: {len(row)} cells, but the header has {len(names)} columns")
                    continue
                record = {name: cell for name, cell in zip(names, row) if name}
                yield RawRecord(lineno, record, raw=json.dumps(row, ensure_ascii=False))
        except csv.Error as exc:
            raise BadInput(f"{path}: line {reader.line_num}: broken CSV ({exc}); check the quotes on that row") from None
        except UnicodeDecodeError as exc:
            raise BadInput(
                f"{path}: line {reader.line_num + 1}: not valid UTF-8 (byte 0x{exc.object[exc.start]:02X}); save the file as UTF-8"
            ) from None


class _Prefixed(io.RawIOBase):
    """A binary stream that first returns bytes already read from it (the binary sniff)."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self.head, self.rest = head, rest

    def readable(self) -> bool:
        """Always: it is a reader."""
        return True

    def readinto(self, buffer) -> int:
        """Fill `buffer` from the remembered head first, then from the stream; bytes read."""
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n], self.head = self.head[:n], self.head[n:]
            return n
        data = self.rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _Chain:
    """Lines of the sniffed sample, then of the rest of the text stream (csv.reader takes any iterator)."""

    def __init__(self, sample: str, rest: IO[str]) -> None:
        self.pending = io.StringIO(sample, newline="")
        self.rest = rest

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.pending.readline()
        if line and not line.endswith("\n"):
            line += self.rest.readline()  # the sample ended mid-line
        if line:
            return line
        line = self.rest.readline()
        if not line:
            raise StopIteration
        return line


def _arrow_rows(batches) -> Iterator[RawRecord]:
    """Arrow record batches as RawRecords numbered from 1 (their row number)."""
    number = 0
    for batch in batches:
        for record in batch.to_pylist():
            number += 1
            yield RawRecord(number, record)


def read_parquet(source: SourceFile, layout: SourceLayout) -> Iterator[RawRecord | Rejected]:
    """Parquet in row batches; non-JSON values (bytes, timestamps, decimals, structs) are kept as they are."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(source.path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise BadInput(f"{source.path}: not a readable Parquet file ({exc})") from None
    layout.arrow_schema = layout.arrow_schema or _schema_b64(parquet.schema_arrow)
    try:
        yield from _arrow_rows(parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS))
    except (pa.ArrowException, OSError) as exc:
        raise BadInput(f"{source.path}: the Parquet file is damaged ({exc})") from None


def read_hf_folder(folder: Path, layout: SourceLayout) -> Iterator[tuple[Path, RawRecord]]:
    """A folder written by `datasets.Dataset.save_to_disk`: Arrow stream files named in state.json."""
    import pyarrow as pa

    try:
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        files = [folder / f["filename"] for f in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadInput(f"{folder / 'state.json'}: not a readable save_to_disk state ({exc})") from None
    layout.container = "hf"
    layout.shards = [f.name for f in files]
    for path in files:
        try:
            reader = pa.ipc.open_stream(pa.memory_map(str(path)))
        except (pa.ArrowException, OSError) as exc:
            raise BadInput(f"{path}: not a readable Arrow file ({exc})") from None
        layout.arrow_schema = layout.arrow_schema or _schema_b64(reader.schema)
        for item in _arrow_rows(reader):
            yield path, item


READERS = {"jsonl": read_jsonl, "json": read_json, "csv": read_csv, "parquet": read_parquet}


@dataclass
class Opened:
    """A source ready to read: its file type, its layout (filled in as it is read) and its records."""

    path: Path
    file_type: FileType
    layout: SourceLayout
    records: Iterator[RawRecord | Rejected]
    notes: list[str] = field(default_factory=list)


def open_source(path: Path) -> Opened:
    """Open a file, a compressed file, a folder of shards or a save_to_disk folder for reading.

    Raises BadInput for a missing path, an unknown type, an empty folder or mixed shard types; problems
    inside records come out of `records` as Rejected (or BadInput for a broken document)."""
    if not path.exists():
        raise BadInput(f"{path}: no such file")
    layout = SourceLayout()
    if path.is_dir():
        if (path / "dataset_dict.json").is_file():
            splits = ", ".join(sorted(p.name for p in path.iterdir() if p.is_dir()))
            raise BadInput(f"{path}: a DatasetDict folder with splits ({splits}); give one split's folder, e.g. {path / 'train'}")
        if _looks_like_hf(path):
            return Opened(path, "arrow", layout, _tag_files(read_hf_folder(path, layout)))  # type: ignore[arg-type]
        shards = shards_of(path)
        layout.container = "folder"
        layout.shards = [str(s.path.relative_to(path)) for s in shards]
        layout.compression = shards[0].compression
        return Opened(path, shards[0].file_type, layout, _chain_shards(shards, layout))
    source = classify(path)
    if path.stat().st_size == 0:
        raise BadInput(f"{path}: no samples (the file is empty)")
    layout.compression = source.compression
    if source.file_type == "json" and _guarded_check(source):
        layout.named_json = True
        note = f"{path.name}: named .json but holds JSON Lines (one record per line); read as JSON Lines"
        return Opened(path, "jsonl", layout, _guard(read_jsonl(source, layout), source), [note])
    return Opened(path, source.file_type, layout, _guard(READERS[source.file_type](source, layout), source))


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


def _tag_files(items: Iterator[tuple[Path, RawRecord]]) -> Iterator[RawRecord]:
    for path, item in items:
        item.file = str(path)
        yield item


def _chain_shards(shards: list[SourceFile], layout: SourceLayout) -> Iterator[RawRecord | Rejected]:
    for shard in shards:
        for item in READERS[shard.file_type](shard, layout):
            if isinstance(item, Rejected):
                item.reason = f"{shard.path.name}: {item.reason}"
            else:
                item.file = str(shard.path)
            yield item

