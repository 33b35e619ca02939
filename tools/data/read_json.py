"""JSON Lines and JSON arrays into raw records, in bounded memory: a line or array element over the record
limit is refused unread; `loads` parses one JSON text strictly (NaN refused, keys written twice noted)."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from goalcover.tools.core.errors import BadInput
from goalcover.tools.data.sources import (
    BINARY_SNIFF_BYTES,
    DEFAULT_MAX_RECORD_CHARS,
    SHAPE_KEYS,
    UTF8_MAX_BYTES,
    RawRecord,
    Rejected,
    SourceFile,
    SourceLayout,
    check_text,
    open_bytes,
    record_too_long,
)

JSON_CHUNK_BYTES = 1 << 20


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
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError) or "integer string conversion" not in str(exc):
            raise
        limit = sys.get_int_max_str_digits()  # CPython's guard against quadratic int parsing (CVE-2020-10735)
        raise ValueError(f"a number with more than {limit:,} digits, too long to be read as an integer") from None


def _duplicate_warning(where: str, keys: list[str]) -> list[str]:
    if not keys:
        return []
    named = ", ".join(repr(k) for k in keys)
    return [f"{where}: the key {named} is written twice in one object; the last value is used"]



def _decode_line(lineno: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"line {lineno}: not valid UTF-8 (byte 0x{raw[exc.start]:02X} at column {exc.start + 1}); save the file as UTF-8"
        ) from None



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
    with open_bytes(source) as f:
        lineno = 0
        for raw_line in _bounded_lines(f, max_chars * UTF8_MAX_BYTES):
            lineno += 1
            if raw_line is None:
                yield Rejected(lineno, record_too_long(f"line {lineno}", max_chars))
                continue
            if lineno == 1:
                check_text(path, raw_line)
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
    with open_bytes(source) as f:
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
    with open_bytes(source) as f:
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
        check_text(path, bytes(self.buf[:BINARY_SNIFF_BYTES]))
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
                yield Rejected(self.line_at(start), record_too_long(f"line {self.line_at(start)}: record {number}", self.max_chars))
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
                yield Rejected(self.line_at(start), record_too_long(f"line {self.line_at(start)}: record {number}", self.max_chars))
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

