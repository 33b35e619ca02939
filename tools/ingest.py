"""Reading fine-tuning files into Sample records.

Every problem becomes one message naming the file and the line (or record, or row) and the field: users
hand us real, messy files, and a traceback or a silently dropped row would cost them trust or data.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from goalcover.tools.errors import BadInput
from goalcover.tools.models import SHAPES, FileType, Sample, Shape, content_hash

# Which key marks which shape, in the order they are tried (a chat record may also carry a `text` key).
SIGNATURES: tuple[tuple[str, Shape], ...] = (
    ("messages", "messages"),
    ("conversations", "sharegpt"),
    ("instruction", "alpaca"),
    ("prompt", "prompt-completion"),
    ("text", "text"),
)
SHAPE_HELP = (
    "alpaca (instruction, input, output), messages (messages: [{role, content}]), "
    "sharegpt (conversations: [{from, value}]), prompt-completion (prompt, completion), text (text)"
)
BINARY_SNIFF_BYTES = 8192


# --- record shapes ---------------------------------------------------------------------------------

class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)


class AlpacaRecord(_Record):
    instruction: str
    input: str | None = None
    output: str


class ChatMessage(_Record):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class MessagesRecord(_Record):
    messages: list[ChatMessage] = Field(min_length=1)


class ShareGPTTurn(_Record):
    from_: Literal["system", "human", "user", "gpt", "assistant", "function_call", "observation", "tool"] = Field(
        alias="from"
    )
    value: str


class ShareGPTRecord(_Record):
    conversations: list[ShareGPTTurn] = Field(min_length=1)


class PromptCompletionRecord(_Record):
    prompt: str
    completion: str


class TextRecord(_Record):
    text: str


RECORD_MODELS: dict[Shape, type[_Record]] = {
    "alpaca": AlpacaRecord,
    "messages": MessagesRecord,
    "sharegpt": ShareGPTRecord,
    "prompt-completion": PromptCompletionRecord,
    "text": TextRecord,
}
SHAREGPT_ROLES = {"human": "user", "gpt": "assistant"}


def _content_text(content: str | list[dict[str, Any]] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))


def text_view(shape: Shape, parsed: _Record) -> str:
    """One readable text per sample, the same for every shape, for the embedder and the judge."""
    if isinstance(parsed, AlpacaRecord):
        parts = [f"Instruction: {parsed.instruction}"]
        if parsed.input:
            parts.append(f"Input: {parsed.input}")
        parts.append(f"Response: {parsed.output}")
        return "\n\n".join(parts)
    if isinstance(parsed, MessagesRecord):
        return "\n\n".join(f"{m.role}: {_content_text(m.content)}" for m in parsed.messages)
    if isinstance(parsed, ShareGPTRecord):
        return "\n\n".join(f"{SHAREGPT_ROLES.get(t.from_, t.from_)}: {t.value}" for t in parsed.conversations)
    if isinstance(parsed, PromptCompletionRecord):
        return f"Prompt: {parsed.prompt}\n\nCompletion: {parsed.completion}"
    assert isinstance(parsed, TextRecord)
    return parsed.text


# --- reading files ---------------------------------------------------------------------------------

@dataclass
class RawRecord:
    line: int
    record: dict[str, Any]
    raw: str | None = None  # the JSONL line as read, for byte-exact export


@dataclass
class Rejected:
    line: int
    reason: str


def file_type_of(path: Path, forced: str | None = None) -> FileType:
    if forced:
        return forced  # type: ignore[return-value]
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        return "json"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise BadInput(f"{path}: unknown file type {suffix or '(no extension)'!r}; GoalCover reads .jsonl, .json, .csv and .parquet")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (write null or a number)")


def _loads(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("nested too deeply to be a training record") from None


def _check_binary(path: Path, data: bytes) -> None:
    if b"\x00" in data[:BINARY_SNIFF_BYTES]:
        raise BadInput(f"{path}: not a text/JSON file (it contains NUL bytes); is it binary or compressed?")


def _decode_line(path: Path, lineno: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start]
        raise BadInput(
            f"{path}: line {lineno}: not valid UTF-8 (byte 0x{bad:02X} at column {exc.start + 1}); "
            "save the file as UTF-8"
        ) from None


def _decode_document(path: Path, data: bytes) -> str:
    """A whole text file (BOM allowed) as str, or a BadInput naming the line of the first bad byte."""
    _check_binary(path, data)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        lineno = data.count(b"\n", 0, exc.start) + 1
        raise BadInput(f"{path}: line {lineno}: not valid UTF-8 (byte 0x{data[exc.start]:02X}); save the file as UTF-8") from None


def read_jsonl(path: Path, data: bytes) -> Iterator[RawRecord | Rejected]:
    _check_binary(path, data)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for lineno, raw_line in enumerate(data.split(b"\n"), start=1):
        raw_line = raw_line.removesuffix(b"\r")
        if not raw_line.strip():
            continue
        try:
            line = _decode_line(path, lineno, raw_line)
        except BadInput as exc:
            yield Rejected(lineno, str(exc).split(": ", 1)[1])
            continue
        try:
            value = _loads(line)
        except json.JSONDecodeError as exc:
            yield Rejected(lineno, f"line {lineno}: not valid JSON ({exc.msg}, column {exc.colno})")
            continue
        except ValueError as exc:
            yield Rejected(lineno, f"line {lineno}: {exc}")
            continue
        if not isinstance(value, dict):
            yield Rejected(lineno, f"line {lineno}: expected a JSON object, got {type(value).__name__}")
            continue
        yield RawRecord(lineno, value, raw=line)


def read_json(path: Path, data: bytes) -> Iterator[RawRecord | Rejected]:
    text = _decode_document(path, data)
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    pos = _skip_ws(text, 0)
    if pos >= len(text):
        raise BadInput(f"{path}: no samples (the file is empty)")
    if text[pos] != "[":
        try:
            value = _loads(text)
        except (ValueError, json.JSONDecodeError):
            value = None
        got = f"an object with keys {', '.join(map(repr, list(value)[:5]))}" if isinstance(value, dict) else "something else"
        raise BadInput(f"{path}: expected a JSON array of records, got {got}; for one record per line use .jsonl")
    pos = _skip_ws(text, pos + 1)
    number = 0
    while pos < len(text) and text[pos] != "]":
        number += 1
        lineno = text.count("\n", 0, pos) + 1
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})") from None
        except RecursionError:
            raise BadInput(f"{path}: line {lineno}: record {number} is nested too deeply to be a training record") from None
        except ValueError as exc:
            raise BadInput(f"{path}: line {lineno}: {exc}") from None
        if isinstance(value, dict):
            yield RawRecord(lineno, value)
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


_WS = re.compile(r"\s*")


def _skip_ws(text: str, pos: int) -> int:
    return _WS.match(text, pos).end()  # type: ignore[union-attr]


def read_csv(path: Path, data: bytes) -> Iterator[RawRecord | Rejected]:
    text = _decode_document(path, data)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise BadInput(f"{path}: no samples (the file is empty)")
        known = {key for key, _ in SIGNATURES}
        if not known & {h.strip() for h in header}:
            shown = ", ".join(repr(h) for h in header[:4])
            raise BadInput(
                f"{path}: line 1: the CSV header ({shown}) names no known column; the first row must be a header "
                f"naming the columns of one shape: {SHAPE_HELP}"
            )
        header = [h.strip() for h in header]
        row_start = reader.line_num + 1
        for row in reader:
            lineno = row_start
            row_start = reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                yield Rejected(lineno, f"line {lineno}: {len(row)} cells, but the header has {len(header)} columns")
                continue
            yield RawRecord(lineno, dict(zip(header, row)))
    except csv.Error as exc:
        raise BadInput(f"{path}: line {reader.line_num}: broken CSV ({exc}); check the quotes on that row") from None


def read_parquet(path: Path, data: bytes) -> Iterator[RawRecord | Rejected]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise BadInput(f"{path}: not a readable Parquet file ({exc})") from None
    for number, record in enumerate(table.to_pylist(), start=1):
        yield RawRecord(number, record)


READERS = {"jsonl": read_jsonl, "json": read_json, "csv": read_csv, "parquet": read_parquet}


# --- shapes ----------------------------------------------------------------------------------------

def detect_shape(record: dict[str, Any]) -> Shape | None:
    for key, shape in SIGNATURES:
        if key in record:
            return shape
    return None


def _pydantic_message(exc: ValidationError) -> str:
    err = exc.errors()[0]
    field = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(err["loc"]))
    if err["type"] == "missing":
        return f"field {field!r} is missing"
    got = err.get("input")
    got_text = f" (got {type(got).__name__})" if got is not None and err["type"].endswith("_type") else ""
    return f"field {field!r}: {err['msg']}{got_text}"


def _decode_json_cells(record: dict[str, Any], shape: Shape) -> dict[str, Any]:
    """CSV cells are strings; chat shapes keep their turns as JSON in one cell."""
    key = {"messages": "messages", "sharegpt": "conversations"}.get(shape)
    if key and isinstance(record.get(key), str):
        try:
            return {**record, key: _loads(record[key])}
        except ValueError:
            return record
    return record


def parse_record(raw: RawRecord, shape: Shape) -> tuple[_Record, str]:
    """Validate one record as `shape`; return it with its text view, or raise ValueError with the reason."""
    model = RECORD_MODELS[shape]
    try:
        parsed = model.model_validate(_decode_json_cells(raw.record, shape))
    except ValidationError as exc:
        raise ValueError(_pydantic_message(exc)) from None
    return parsed, text_view(shape, parsed)


def _record_id(record: dict[str, Any]) -> str | None:
    value = record.get("id")
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"field 'id' must be a string or an integer (got {type(value).__name__})")
    return str(value)


@dataclass
class ReadResult:
    samples: list[Sample]
    shape: Shape
    file_type: FileType
    rejected: list[Rejected]
    warnings: list[str]


def read_samples(
    path: Path,
    shape: Shape | Literal["auto"] = "auto",
    *,
    skip_invalid: bool = False,
    max_sample_chars: int = 2_000_000,
    warn_sample_chars: int = 100_000,
) -> ReadResult:
    """Read, validate and identify every record of one file.

    Without `skip_invalid` the first problem raises BadInput; with it, bad records are collected as
    Rejected (with reasons) and the rest are returned — nothing is dropped without a trace.
    """
    path = path.expanduser().resolve()
    if not path.exists():
        raise BadInput(f"{path}: no such file")
    if path.is_dir():
        raise BadInput(f"{path}: is a directory; give the dataset file itself")
    if shape != "auto" and shape not in SHAPES:
        raise BadInput(f"unknown format {shape!r}; choose auto or one of: {', '.join(SHAPES)}")
    ftype = file_type_of(path)
    data = path.read_bytes()
    if not data.strip():
        raise BadInput(f"{path}: no samples (the file is empty)")

    samples: list[Sample] = []
    rejected: list[Rejected] = []
    warnings: list[str] = []
    file_shape: Shape | None = None if shape == "auto" else shape
    first_line = 0
    seen_ids: dict[str, int] = {}

    def reject(line: int, reason: str) -> None:
        if not skip_invalid:
            raise BadInput(f"{path}: {reason}")
        rejected.append(Rejected(line, reason))

    for item in READERS[ftype](path, data):
        if isinstance(item, Rejected):
            reject(item.line, item.reason)
            continue
        where = f"line {item.line}" if ftype in ("jsonl", "csv", "json") else f"row {item.line}"
        found = detect_shape(item.record)
        if found is None and file_shape is None:
            keys = ", ".join(map(repr, list(item.record)[:6])) or "none"
            reject(item.line, f"{where}: no known shape (keys: {keys}); GoalCover reads {SHAPE_HELP}; use --format to choose one")
            continue
        if file_shape is None:
            file_shape, first_line = found, item.line
        elif shape == "auto" and found != file_shape:
            reject(
                item.line,
                f"{where}: the shape changes from {file_shape} (since line {first_line}) to {found or 'an unknown shape'}; "
                "a file holds one shape",
            )
            continue
        try:
            parsed, text = parse_record(item, file_shape)
            own_id = _record_id(item.record)
        except ValueError as exc:
            reject(item.line, f"{where}: {exc}")
            continue
        size = len(item.raw) if item.raw is not None else len(text)
        if size > max_sample_chars:
            reject(item.line, f"{where}: the sample has {size:,} characters, over the limit of {max_sample_chars:,} (GOALCOVER_MAX_SAMPLE_CHARS)")
            continue
        if size > warn_sample_chars:
            warnings.append(f"{where}: a long sample ({size:,} characters); it is kept whole, but judged and embedded by its start")
        sample_id = own_id or f"h-{content_hash(text)[:16]}"
        if own_id is None and sample_id in seen_ids:
            copies = sum(1 for s in seen_ids if s == sample_id or s.startswith(sample_id + "-"))
            sample_id = f"{sample_id}-{copies + 1}"
        if sample_id in seen_ids:
            reject(item.line, f"{where}: id {sample_id!r} is used again (first on line {seen_ids[sample_id]}); ids must be unique")
            continue
        seen_ids[sample_id] = item.line
        samples.append(
            Sample(id=sample_id, format=file_shape, source=str(path), line=item.line, record=item.record, raw=item.raw, text=text)
        )

    if not samples:
        if rejected:
            raise BadInput(f"{path}: no valid samples ({len(rejected)} rejected; first: {rejected[0].reason})")
        raise BadInput(f"{path}: no samples (the file has no records)")
    assert file_shape is not None
    return ReadResult(samples, file_shape, ftype, rejected, warnings)
