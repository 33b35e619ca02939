"""Reading fine-tuning files into Sample records.

Every problem becomes one message naming the file and the line (or record, or row) and the field: users
hand us real, messy files, and a traceback or a silently dropped row would cost them trust or data.
Reading streams (see `readers`): `scan` yields one checked `Sample` (or `Rejected`) at a time, so a file
of any size goes through in bounded memory; `read_samples` collects them for small files and tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from goalcover.tools.core.errors import BadInput, describe_validation_error
from goalcover.tools.core.shapes import SHAPES, FileType, Sample, Shape, content_hash
from goalcover.tools.data.readers import RawRecord, Rejected, SourceLayout, file_type_of, loads, open_source
from goalcover.tools.data.record_text import (
    PART_PLACEHOLDERS,
    REASONING_KEYS,
    RECORD_MODELS,
    SHAREGPT_LABELS,
    SHAREGPT_ROLES,
    AlpacaRecord,
    ChatMessage,
    MessagesRecord,
    PromptCompletionRecord,
    ShareGPTRecord,
    ShareGPTTurn,
    TextRecord,
    _Record,
    text_parts,
    text_view,
)
from goalcover.tools.data.values import check_text, to_storable

__all__ = [
    "RawRecord", "Rejected", "file_type_of", "parse_record", "read_samples", "scan", "text_parts", "text_view",
    # the record shapes, from record_text
    "PART_PLACEHOLDERS", "REASONING_KEYS", "RECORD_MODELS", "SHAREGPT_LABELS", "SHAREGPT_ROLES", "AlpacaRecord",
    "ChatMessage", "MessagesRecord", "PromptCompletionRecord", "ShareGPTRecord", "ShareGPTTurn", "TextRecord",
]

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
# Long-sample warnings beyond this many are counted, not listed.
MAX_LISTED_WARNINGS = 20


# --- shapes ----------------------------------------------------------------------------------------

def detect_shape(record: dict[str, Any]) -> Shape | None:
    """The shape a record's keys mark (SIGNATURES, first match), or None."""
    for key, shape in SIGNATURES:
        if key in record:
            return shape
    return None


PREFERENCE_HELP = (
    "preference data (a 'chosen' and a 'rejected' answer, as DPO/RLHF trainers use); GoalCover audits "
    "supervised fine-tuning data: write each prompt with its chosen answer as prompt-completion (prompt, "
    "completion) or messages, and ingest that"
)


def is_preference(record: dict[str, Any]) -> bool:
    """Whether a record is a preference pair (`chosen` and `rejected`, as in TRL's DPO format, Anthropic
    HH-RLHF, UltraFeedback binarized) rather than one training example."""
    return "chosen" in record and "rejected" in record and not {"completion", "output", "messages", "conversations"} & set(record)


def _decode_json_cells(record: dict[str, Any], shape: Shape) -> dict[str, Any]:
    """CSV cells are strings; chat shapes keep their turns as JSON in one cell."""
    key = {"messages": "messages", "sharegpt": "conversations"}.get(shape)
    if key and isinstance(record.get(key), str):
        try:
            return {**record, key: loads(record[key])[0]}
        except ValueError:
            return record
    return record


def parse_record(raw: RawRecord, shape: Shape) -> tuple[_Record, str]:
    """Validate one record as `shape`; return it with its text view, or raise ValueError with the reason."""
    model = RECORD_MODELS[shape]
    try:
        parsed = model.model_validate(_decode_json_cells(raw.record, shape))
    except ValidationError as exc:
        raise ValueError(describe_validation_error(exc)) from None
    return parsed, text_view(shape, parsed)


def _record_id(record: dict[str, Any]) -> str | None:
    value = record.get("id")
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"field 'id' must be a string or an integer (got {type(value).__name__})")
    return str(value)


class IdRegistry:
    """Ids seen so far in one read, id -> line. In memory by default; `dataset.ingest_file` passes one
    backed by its SQLite staging table, so a file of any size is checked in bounded memory."""

    def __init__(self) -> None:
        self._lines: dict[str, int] = {}

    def line_of(self, sample_id: str) -> int | None:
        """The line `sample_id` was first seen on, or None."""
        return self._lines.get(sample_id)

    def add(self, sample_id: str, line: int) -> None:
        """Note `sample_id` as seen on `line`."""
        self._lines[sample_id] = line


# Past this many characters read, a source may expand at most GOALCOVER_INGEST_MAX_EXPANSION times its size.
EXPANSION_FLOOR_CHARS = 256_000_000
DEFAULT_MAX_EXPANSION = 200.0


@dataclass
class Scan:
    """A file being read: `samples` yields checked Samples one at a time; `shape`, `file_type` and
    `layout` are known once the first sample is out; `rejected` and `warnings` fill as it goes.

    Without `skip_invalid` the first problem raises BadInput naming the file and line; with it, bad records
    go to `on_reject` (or `rejected`) with their reasons — nothing is dropped without a trace."""

    path: Path
    file_type: FileType
    layout: SourceLayout
    shape: Shape | None = None
    rejected: list[Rejected] = field(default_factory=list)
    rejected_count: int = 0
    warnings: list[str] = field(default_factory=list)
    long_samples: int = 0
    samples: Iterator[Sample] = iter(())
    stored_bytes: int = 0  # the source's bytes on disk (a folder: all its files)
    max_expansion: float = DEFAULT_MAX_EXPANSION
    chars_read: int = 0  # characters of the samples yielded and of the rejections' reasons so far

    def spend(self, chars: int, line: int) -> None:
        """Count `chars` more read (at `line`); BadInput once past EXPANSION_FLOOR_CHARS and
        `max_expansion` times `stored_bytes`: a compression bomb, of samples or of rejected lines."""
        self.chars_read += chars
        if self.chars_read > max(EXPANSION_FLOOR_CHARS, self.max_expansion * self.stored_bytes):
            raise BadInput(
                f"{self.path}: line {line}: the samples and rejections so far hold {self.chars_read:,} characters, over "
                f"{self.max_expansion:g} times the {self.stored_bytes:,} bytes on disk (GOALCOVER_INGEST_MAX_EXPANSION): "
                "a compression bomb? Stopped; nothing was ingested"
            )


def scan(
    path: Path,
    shape: Shape | Literal["auto"] = "auto",
    *,
    skip_invalid: bool = False,
    max_sample_chars: int = 2_000_000,
    warn_sample_chars: int = 100_000,
    ids: IdRegistry | None = None,
    keep_rejected: int | None = None,
    on_reject: Callable[[Rejected], None] | None = None,
    max_expansion: float = DEFAULT_MAX_EXPANSION,
) -> Scan:
    """Open `path` (a file, a .gz/.zst file, a folder of shards or a save_to_disk folder) for streaming.

    Raises BadInput at once for a missing path, an unknown type or format; later problems raise from
    iterating `samples` (or are collected with `skip_invalid`). `keep_rejected` caps how many Rejected
    are kept in memory (all are counted, and all go to `on_reject` when given). Past EXPANSION_FLOOR_CHARS,
    samples and rejections holding more than `max_expansion` characters a byte of the source on disk stop
    the reading with BadInput (a compression bomb: gzip tops out near 1,000 times, zstd and Parquet
    dictionaries do not; see Scan.spend)."""
    path = path.expanduser().resolve()
    if shape != "auto" and shape not in SHAPES:
        raise BadInput(f"unknown format {shape!r}; choose auto or one of: {', '.join(SHAPES)}")
    opened = open_source(path, max_sample_chars)
    result = Scan(path, opened.file_type, opened.layout, warnings=list(opened.notes))
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    result.stored_bytes, result.max_expansion = sum(p.stat().st_size for p in files), max_expansion
    result.samples = _samples(result, opened.records, shape, skip_invalid, max_sample_chars, warn_sample_chars, ids or IdRegistry(), keep_rejected, on_reject)
    return result


def _samples(
    result: Scan,
    records: Iterator[RawRecord | Rejected],
    shape: Shape | Literal["auto"],
    skip_invalid: bool,
    max_sample_chars: int,
    warn_sample_chars: int,
    ids: IdRegistry,
    keep_rejected: int | None,
    on_reject: Callable[[Rejected], None] | None,
) -> Iterator[Sample]:
    path = result.path
    result.shape = None if shape == "auto" else shape
    first_line = 0
    collisions: dict[str, int] = {}
    produced = 0

    def reject(line: int, reason: str) -> None:
        if not skip_invalid:
            raise BadInput(f"{path}: {reason}")
        result.spend(len(reason), line)
        result.rejected_count += 1
        if keep_rejected is None or len(result.rejected) < keep_rejected:
            result.rejected.append(Rejected(line, reason))
        if on_reject:
            on_reject(Rejected(line, reason))

    for item in records:
        if isinstance(item, Rejected):
            reject(item.line, item.reason)
            continue
        where = f"line {item.line}" if result.file_type in ("jsonl", "csv", "json") else f"row {item.line}"
        if item.file and item.file != str(path):
            where = f"{Path(item.file).name}: {where}"
        if is_preference(item.record):
            reject(item.line, f"{where}: {PREFERENCE_HELP}")
            continue
        found = detect_shape(item.record)
        if found is None and result.shape is None:
            keys = ", ".join(map(repr, list(item.record)[:6])) or "none"
            reject(item.line, f"{where}: no known shape (keys: {keys}); GoalCover reads {SHAPE_HELP}; use --format to choose one")
            continue
        if result.shape is None:
            result.shape, first_line = found, item.line
        elif shape == "auto" and found != result.shape:
            reject(
                item.line,
                f"{where}: the shape changes from {result.shape} (since line {first_line}) to {found or 'an unknown shape'}; "
                "a file holds one shape",
            )
            continue
        try:
            check_text(item.record)
            to_storable(item.record)  # every value can be stored and exported as it came
            parsed, text = parse_record(item, result.shape)
            own_id = _record_id(item.record)
        except ValueError as exc:
            reject(item.line, f"{where}: {exc}")
            continue
        except RecursionError:
            reject(item.line, f"{where}: nested too deeply to be a training record")
            continue
        size = len(item.raw) if item.raw is not None else len(text)
        if size > max_sample_chars:
            reject(item.line, f"{where}: the sample has {size:,} characters, over the limit of {max_sample_chars:,} (GOALCOVER_INGEST_MAX_SAMPLE_CHARS)")
            continue
        result.warnings += item.warnings
        if size > warn_sample_chars:
            result.long_samples += 1
            if result.long_samples <= MAX_LISTED_WARNINGS:
                result.warnings.append(f"{where}: a long sample ({size:,} characters); it is kept whole, but judged and embedded by its start")
        sample_id = own_id or f"h-{content_hash(text)[:16]}"
        if own_id is None and ids.line_of(sample_id) is not None:
            # The same content twice without ids: both are kept, the copy gets a numbered id.
            collisions[sample_id] = collisions.get(sample_id, 1) + 1
            sample_id = f"{sample_id}-{collisions[sample_id]}"
        first = ids.line_of(sample_id)
        if first is not None:
            reject(item.line, f"{where}: id {sample_id!r} is used again (first on line {first}); ids must be unique")
            continue
        ids.add(sample_id, item.line)
        produced += 1
        part = str(Path(item.file).relative_to(path)) if item.file and item.file != str(path) else None
        result.spend(size, item.line)
        yield Sample(
            id=sample_id, format=result.shape, source=str(path), line=item.line, record=item.record, raw=item.raw, text=text, part=part
        )

    if result.long_samples > MAX_LISTED_WARNINGS:
        result.warnings.append(f"… and {result.long_samples - MAX_LISTED_WARNINGS:,} more long samples")
    if not produced:
        if result.rejected_count:
            raise BadInput(f"{path}: no valid samples ({result.rejected_count} rejected; first: {result.rejected[0].reason})")
        raise BadInput(f"{path}: no samples (the file has no records)")


@dataclass
class ReadResult:
    """A whole source read into memory: samples, shape, file type, rejected records, warnings, layout."""
    samples: list[Sample]
    shape: Shape
    file_type: FileType
    rejected: list[Rejected]
    warnings: list[str]
    layout: SourceLayout


def read_samples(
    path: Path,
    shape: Shape | Literal["auto"] = "auto",
    *,
    skip_invalid: bool = False,
    max_sample_chars: int = 2_000_000,
    warn_sample_chars: int = 100_000,
) -> ReadResult:
    """Every record of one source, read and checked into memory (for small files and tests; ingest
    streams with `scan`). Raises BadInput as `scan` does."""
    reading = scan(path, shape, skip_invalid=skip_invalid, max_sample_chars=max_sample_chars, warn_sample_chars=warn_sample_chars)
    samples = list(reading.samples)
    assert reading.shape is not None
    return ReadResult(samples, reading.shape, reading.file_type, reading.rejected, reading.warnings, reading.layout)
