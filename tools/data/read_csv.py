"""CSV and TSV into raw records: the delimiter sniffed with CleverCSV, Excel's BOM and CRLF, multi-line quoted
cells, the verbatim header kept for export, and no row read past the record limit."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from goalcover.tools.core.errors import BadInput
from goalcover.tools.data.sources import (
    BINARY_SNIFF_BYTES,
    DEFAULT_MAX_RECORD_CHARS,
    SHAPE_KEYS,
    RawRecord,
    Rejected,
    SourceFile,
    SourceLayout,
    check_text,
    open_bytes,
    record_too_long,
)

CSV_SNIFF_CHARS = 65536
CSV_DELIMITERS = ",;\t|"

csv.field_size_limit(2**31 - 1)  # no 128 KiB cap: a long sample is kept (with a warning), as in JSONL


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
    with open_bytes(source) as binary:
        head = binary.read(BINARY_SNIFF_BYTES)
        check_text(path, head)
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
            raise BadInput(f"{path}: {record_too_long(f'line {row_start}', max_chars)}") from None
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

