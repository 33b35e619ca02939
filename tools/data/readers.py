"""Files and containers into a stream of raw records, in bounded memory.

What users hand us: JSONL (also gzip/zstd-compressed, also saved as `.json`), JSON arrays, CSV/TSV in
Excel's dialects, Parquet, folders of shards (Parquet or JSONL parts, as the Hugging Face Hub and trainers
write them) and folders written by Hugging Face `datasets`' `save_to_disk`. Each reader yields one
`RawRecord` (or a `Rejected` naming the place) at a time: a 1 GB JSONL or a 10⁶-row Parquet never sits in
memory whole, and no JSONL line, CSV row or JSON array element is read past the record limit
(GOALCOVER_INGEST_MAX_SAMPLE_CHARS), so a gzip bomb or a 2 GB line is refused in bounded memory. How the source was laid out (BOM, line ends, CSV dialect and header, Arrow schema, shards)
is kept in `SourceLayout`, so export can write the same container back.
"""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel

from goalcover.tools.core.errors import BadInput
from goalcover.tools.core.shapes import FileType

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
# One record is read whole only up to this many characters (GOALCOVER_INGEST_MAX_SAMPLE_CHARS, passed in by
# `open_source`); a longer line, row or array element is refused without being read into memory.
DEFAULT_MAX_RECORD_CHARS = 2_000_000
UTF8_MAX_BYTES = 4  # bytes one character takes at most in UTF-8: the byte bound that cannot cut a kept record
JSON_CHUNK_BYTES = 1 << 20
STATE_JSON_MAX_BYTES = 1 << 24
BOMS = {b"\xff\xfe\x00\x00": "UTF-32", b"\x00\x00\xfe\xff": "UTF-32", b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}

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
    csv_quoting: str | None = None  # "none" for .tsv: quotes are literal characters, not quoting
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


def _decode_line(lineno: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"line {lineno}: not valid UTF-8 (byte 0x{raw[exc.start]:02X} at column {exc.start + 1}); save the file as UTF-8"
        ) from None


def _too_long(where: str, max_chars: int) -> str:
    return (
        f"{where}: the record is over the limit of {max_chars:,} characters (GOALCOVER_INGEST_MAX_SAMPLE_CHARS); "
        "it was not read into memory"
    )


def _bounded_lines(f: IO[bytes], limit: int) -> Iterator[bytes | None]:
    """The lines of a binary stream, each read only up to `limit` bytes: a longer line comes out as None
    and the rest of it is skipped in 1 MiB steps (after the caller has seen the None), so memory stays
    bounded by `limit` whatever the file holds (a 6 GB line from a 26 MB .gz)."""
    while True:
        line = f.readline(limit + 1)
        if not line:
            return
        if len(line) <= limit or line.endswith(b"\n"):
            yield line
            continue
        yield None
        while True:  # skip the rest of the over-long line without keeping it
            more = f.readline(JSON_CHUNK_BYTES)
            if not more or more.endswith(b"\n"):
                break


def read_jsonl(source: SourceFile, layout: SourceLayout, max_chars: int = DEFAULT_MAX_RECORD_CHARS) -> Iterator[RawRecord | Rejected]:
    """One record per line; BOM, CRLF and a missing final newline are noted in `layout` for export. A
    line over `max_chars` characters (UTF8_MAX_BYTES × that in bytes) is Rejected unread."""
    path = source.path
    with _open(source) as f:
        lineno = 0
        for raw_line in _bounded_lines(f, max_chars * UTF8_MAX_BYTES):
            lineno += 1
            if raw_line is None:
                yield Rejected(lineno, _too_long(f"line {lineno}", max_chars))
                continue
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


def read_json(source: SourceFile, layout: SourceLayout, max_chars: int = DEFAULT_MAX_RECORD_CHARS) -> Iterator[RawRecord | Rejected]:
    """A JSON array of records, streamed: `_JsonArray` cuts the bytes into elements (in 1 MiB reads, in
    time linear in the file), each parsed on its own, so memory holds one element, never the array. An
    element over `max_chars` characters is Rejected unread; a broken array is BadInput naming the line."""
    with _open(source) as f:
        yield from _JsonArray(source.path, f, max_chars).records()


_JSON_TOKEN = re.compile(rb'"(?:[^"\\]++|\\.)*+(")?|[\[\]{},]', re.S)
_JSON_IN_STRING = re.compile(rb'["\\]')


class _JsonArray:
    """The elements of a top-level JSON array read from a binary stream, one at a time.

    Only element boundaries are found here (outside strings: brackets nest, a `,` or `]` at depth 0 ends
    an element); each element's text is then parsed strictly by `loads`, so its raw text is kept for
    export. The buffer holds the current element plus one read; lines are counted incrementally."""

    def __init__(self, path: Path, f: IO[bytes], max_chars: int) -> None:
        self.path, self.f, self.max_chars = path, f, max_chars
        self.limit = max_chars * UTF8_MAX_BYTES
        self.buf = bytearray(f.read(JSON_CHUNK_BYTES))
        self.eof = not self.buf
        self.line, self.line_pos = 1, 0  # self.line is the line number at buf[line_pos]

    def fill(self, keep_from: int) -> int:
        """Drop the bytes before `keep_from` and append one read; the shift to apply to buffer positions.
        At the end of the file nothing is dropped or read, and `self.eof` is set."""
        if not self.eof:
            data = self.f.read(JSON_CHUNK_BYTES)
            self.eof = not data
            if data:
                self.line += self.buf.count(b"\n", self.line_pos, keep_from)
                del self.buf[:keep_from]
                self.line_pos = 0
                self.buf += data
                return keep_from
        return 0

    def line_at(self, pos: int) -> int:
        """The 1-based line of byte `pos` of the buffer (positions must be asked in increasing order)."""
        self.line += self.buf.count(b"\n", self.line_pos, pos)
        self.line_pos = pos
        return self.line

    def skip_ws(self, pos: int) -> int:
        """The position of the next non-blank byte (reading on as needed), or len(buf) at EOF."""
        while True:
            while pos < len(self.buf) and self.buf[pos] in b" \t\r\n":
                pos += 1
            if pos < len(self.buf):
                return pos
            pos -= self.fill(pos)
            if self.eof:
                return len(self.buf)

    def unclosed(self) -> BadInput:
        return BadInput(f"{self.path}: line {self.line_at(len(self.buf))}: the JSON array is not closed (file truncated?)")

    def records(self) -> Iterator[RawRecord | Rejected]:
        """RawRecords (or Rejected) for the array's elements, in order."""
        path = self.path
        while len(self.buf) < BINARY_SNIFF_BYTES and not self.eof:
            self.fill(0)
        _check_binary(path, bytes(self.buf[:BINARY_SNIFF_BYTES]))
        pos = 3 if self.buf.startswith(b"\xef\xbb\xbf") else 0
        pos = self.skip_ws(pos)
        if pos >= len(self.buf):
            raise BadInput(f"{path}: no samples (the file is empty)")
        if self.buf[pos] != ord("["):
            raise BadInput(f"{path}: line {self.line_at(pos)}: expected a JSON array of records, got {self.what_it_is(pos)}; for one record per line use .jsonl")
        pos = self.skip_ws(pos + 1)
        number = 0
        while True:
            if pos >= len(self.buf):
                raise self.unclosed()
            if self.buf[pos] == ord("]"):
                return
            number += 1
            start, end, too_long = yield from self.element(pos, number)
            if not too_long and end - start > self.limit:
                yield Rejected(self.line_at(start), _too_long(f"line {self.line_at(start)}: record {number}", self.max_chars))
            elif not too_long:
                yield self.record(start, end, number)
            pos = end
            if self.buf[pos] == ord(","):
                pos = self.skip_ws(pos + 1)

    def element(self, pos: int, number: int):
        """Find the end of the element starting at `pos`: (start, end, too_long) with `end` at the `,`
        or `]` after it. An element over the limit is reported (yields a Rejected) and skipped unkept.

        One regex match skips a whole string (or finds one bracket or comma); a string cut by the end of
        the buffer is finished in `in_string` mode after the next read."""
        start, depth, in_string, too_long = pos, 0, False, False
        while True:
            if in_string:
                m = _JSON_IN_STRING.search(self.buf, pos)
                if m is not None:
                    pos = m.end() + (1 if m.group() == b"\\" else 0)
                    in_string = m.group() != b'"'
                    if pos <= len(self.buf):
                        continue
            else:
                m = _JSON_TOKEN.search(self.buf, pos)
                if m is not None:
                    pos, token = m.end(), m.group()
                    if token[0] == 0x22:  # a string; unterminated when the buffer ends inside it
                        in_string = m.group(1) is None
                    elif token in b"[{":
                        depth += 1
                    elif depth == 0 and token in b",]":
                        return start, m.start(), too_long
                    elif token in b"]}":
                        depth -= 1
                        if depth < 0:  # a stray closing bracket: the element ends here and its parse says so
                            return start, m.start(), too_long
                    continue
            pos = max(pos, len(self.buf))
            if pos - start > self.limit and not too_long:
                too_long = True
                yield Rejected(self.line_at(start), _too_long(f"line {self.line_at(start)}: record {number}", self.max_chars))
            shift = self.fill(len(self.buf) if too_long else start)
            if self.eof:
                if not too_long:  # the file ends inside this element: say what is wrong with it
                    self.record(start, len(self.buf), number)
                raise self.unclosed()
            pos, start = pos - shift, max(start - shift, 0)

    def record(self, start: int, end: int, number: int) -> RawRecord | Rejected:
        """Parse the element text buf[start:end] strictly."""
        lineno = self.line_at(start)
        data = bytes(self.buf[start:end]).rstrip(b" \t\r\n")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = lineno + data.count(b"\n", 0, exc.start)
            raise BadInput(f"{self.path}: line {bad}: not valid UTF-8 (byte 0x{data[exc.start]:02X}); save the file as UTF-8") from None
        try:
            value, duplicates = loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg == "Extra data":
                raise BadInput(f"{self.path}: line {lineno + exc.lineno - 1}: expected ',' or ']' after record {number}") from None
            raise BadInput(f"{self.path}: line {lineno + exc.lineno - 1}: not valid JSON ({exc.msg}, column {exc.colno})") from None
        except ValueError as exc:
            reason = str(exc)
            if "nested too deeply" in reason:
                reason = f"record {number} is {reason}"
            raise BadInput(f"{self.path}: line {lineno}: {reason}") from None
        if isinstance(value, dict):
            return RawRecord(lineno, value, raw=text, warnings=_duplicate_warning(f"line {lineno}", duplicates))
        return Rejected(lineno, f"line {lineno}: record {number} is a {type(value).__name__}, expected an object")

    def what_it_is(self, pos: int) -> str:
        """What a document that is not an array holds, for the message (keys of an object of bounded size)."""
        while len(self.buf) - pos < self.limit and not self.eof:
            self.fill(0)
        try:
            value, _ = loads(bytes(self.buf[pos:]).decode("utf-8"))
        except ValueError:
            return "something else"
        return f"an object with keys {', '.join(map(repr, list(value)[:5]))}" if isinstance(value, dict) else "something else"


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
    found = dialect.delimiter if dialect is not None else None
    return found if found and found in CSV_DELIMITERS else ","  # ("" is `in` every string)


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


def is_tsv(path: Path) -> bool:
    """Whether the name says TSV (`.tsv`, also compressed): tab-separated, and quotes are plain characters."""
    return path.suffix.lower() == ".tsv" or path.name.lower().endswith((".tsv.gz", ".tsv.zst"))


def read_csv(source: SourceFile, layout: SourceLayout, max_chars: int = DEFAULT_MAX_RECORD_CHARS) -> Iterator[RawRecord | Rejected]:
    """CSV/TSV: delimiter sniffed, BOM and CRLF handled, multi-line quoted cells, no field-size cap.

    Unnamed columns (an Excel export's `instruction,input,output,,`) are left out of the record that is
    judged and kept, with every cell, in the row's raw cells for export. In a .tsv file quotes mean
    nothing (IANA text/tab-separated-values: a cell cannot hold a tab or a line break), so `"Know thyself"`
    keeps its quotes. A row over `max_chars` characters is BadInput, read no further than that."""
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
        lines = _Chain(sample, text, max_chars)
        row_start = 1
        if is_tsv(path):
            layout.csv_quoting = "none"
            reader = csv.reader(lines, delimiter=delimiter, quoting=csv.QUOTE_NONE, strict=True)
        else:
            reader = csv.reader(lines, delimiter=delimiter, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise BadInput(f"{path}: no samples (the file is empty)")
            names = _csv_header(path, header, delimiter)
            layout.csv_header = header
            row_start = reader.line_num + 1
            for row in reader:
                lineno, row_start = row_start, reader.line_num + 1
                lines.row_done()
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(names):
                    yield Rejected(lineno, f"line {lineno}: {len(row)} cells, but the header has {len(names)} columns")
                    continue
                record = {name: cell for name, cell in zip(names, row) if name}
                yield RawRecord(lineno, record, raw=json.dumps(row, ensure_ascii=False))
        except _RowTooLong:
            raise BadInput(f"{path}: {_too_long(f'line {row_start}', max_chars)}") from None
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


class _RowTooLong(Exception):
    """A CSV row (its lines so far) is over the record limit."""


class _Chain:
    """Lines of the sniffed sample, then of the rest of the text stream (csv.reader takes any iterator).

    Each line is read only up to the record limit, and the characters of the row being read are counted
    (a quoted cell spans lines): over the limit, `_RowTooLong` stops the read before it fills memory."""

    def __init__(self, sample: str, rest: IO[str], max_chars: int = DEFAULT_MAX_RECORD_CHARS) -> None:
        self.pending = io.StringIO(sample, newline="")
        self.rest = rest
        self.max_chars = max_chars
        self.row_chars = 0

    def __iter__(self):
        return self

    def row_done(self) -> None:
        """The reader finished a row: count the next one from zero."""
        self.row_chars = 0

    def _count(self, line: str) -> str:
        self.row_chars += len(line)
        if self.row_chars > self.max_chars:
            raise _RowTooLong
        return line

    def __next__(self) -> str:
        line = self.pending.readline()
        if line and not line.endswith("\n"):
            line += self.rest.readline(self.max_chars + 1)  # the sample ended mid-line
        if line:
            return self._count(line)
        line = self.rest.readline(self.max_chars + 1)
        if not line:
            raise StopIteration
        return self._count(line)


def _arrow_rows(batches) -> Iterator[RawRecord]:
    """Arrow record batches as RawRecords numbered from 1 (their row number)."""
    number = 0
    for batch in batches:
        for record in batch.to_pylist():
            number += 1
            yield RawRecord(number, record)


def _check_row_groups(path: Path, metadata, max_chars: int) -> None:
    """BadInput, before anything is decoded, for a Parquet row group whose rows average more than the
    record limit when uncompressed (a compression bomb: its size is in the footer, so it is never read)."""
    first = 1
    for i in range(metadata.num_row_groups):
        group = metadata.row_group(i)
        rows, size = group.num_rows, group.total_byte_size
        if rows and size / rows > max_chars * UTF8_MAX_BYTES:
            raise BadInput(
                f"{path}: rows {first:,}–{first + rows - 1:,} (row group {i + 1}) hold {size:,} bytes uncompressed, over "
                f"the limit of {max_chars:,} characters a record (GOALCOVER_INGEST_MAX_SAMPLE_CHARS); they were not read"
            )
        first += rows


def read_parquet(source: SourceFile, layout: SourceLayout, max_chars: int = DEFAULT_MAX_RECORD_CHARS) -> Iterator[RawRecord | Rejected]:
    """Parquet in row batches; non-JSON values (bytes, timestamps, decimals, structs) are kept as they are.
    A row group whose rows are over `max_chars` on average uncompressed is refused unread."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(source.path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise BadInput(f"{source.path}: not a readable Parquet file ({exc})") from None
    _check_row_groups(source.path, parquet.metadata, max_chars)
    layout.arrow_schema = layout.arrow_schema or _schema_b64(parquet.schema_arrow)
    try:
        yield from _arrow_rows(parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS))
    except (pa.ArrowException, OSError) as exc:
        raise BadInput(f"{source.path}: the Parquet file is damaged ({exc})") from None


def read_hf_folder(folder: Path, layout: SourceLayout) -> Iterator[tuple[Path, RawRecord]]:
    """A folder written by `datasets.Dataset.save_to_disk`: Arrow stream files named in state.json."""
    import pyarrow as pa

    state_path = folder / "state.json"
    try:
        with state_path.open("rb") as f:
            data = f.read(STATE_JSON_MAX_BYTES + 1)
        if len(data) > STATE_JSON_MAX_BYTES:
            raise ValueError(f"over {STATE_JSON_MAX_BYTES:,} bytes")
        state, _ = loads(data.decode("utf-8"))
        files = [_inside(folder, f["filename"]) for f in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadInput(f"{state_path}: not a readable save_to_disk state ({exc})") from None
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


def _inside(folder: Path, name: Any) -> Path:
    """The data file `name` (from state.json) inside `folder`; ValueError for anything that is not a plain
    relative name staying inside it (`../x.arrow`, an absolute path, a symlink leading out)."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ValueError(f"a data file name must be a non-empty string, got {name!r}")
    relative = Path(name)
    if len(name) > 1024 or len(relative.parts) > 32:
        raise ValueError(f"the data file name {name[:60]!r}… is too long or too deeply nested for a save_to_disk shard")
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"the data file {name!r} is not inside the folder; save_to_disk names files inside it")
    path = folder / relative
    if not path.resolve().is_relative_to(folder.resolve()):
        raise ValueError(f"the data file {name!r} leads outside the folder")
    return path


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
    row batches)."""
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


def _tag_files(items: Iterator[tuple[Path, RawRecord]]) -> Iterator[RawRecord]:
    for path, item in items:
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

