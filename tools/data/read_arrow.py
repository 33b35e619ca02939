"""Parquet files and Hugging Face `save_to_disk` folders (Arrow streams) into raw records, in row batches;
values that are not JSON (bytes, timestamps, decimals) are kept as they are, the Arrow schema noted for export.

Memory stays bounded whatever a small file expands to. Arrow decompresses a Parquet page whole, so every
page header is read first (`parquet_pages`): a page that decodes to more than DECODE_MAX_BYTES, whose
values average over the record limit, or that inflates like a compression bomb is refused unread; row
groups are decoded in batches sized from their densest pages to about ARROW_BATCH_BYTES; and each row's
size is measured in Arrow, so a row over the record limit is rejected without becoming a Python object.
A compressed Arrow stream is decompressed a record batch at a time, and one over DECODE_MAX_BYTES is
refused from its metadata. So one read decodes at most DECODE_MAX_BYTES; a page that large costs about
four times that in peak memory (a 256 MiB value: 1.2 GB), as Arrow copies values out of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from goalcover.tools.core.errors import BadInput
from goalcover.tools.data.parquet_pages import column_pages
from goalcover.tools.data.read_json import loads
from goalcover.tools.data.sources import (
    DEFAULT_MAX_RECORD_CHARS,
    UTF8_MAX_BYTES,
    RawRecord,
    Rejected,
    SourceFile,
    SourceLayout,
    schema_b64,
)

PARQUET_BATCH_ROWS = 2048  # rows a Parquet batch holds at most
ARROW_BATCH_BYTES = 64 << 20  # about this many bytes of values are decoded, or turned into records, at once
# The most one Parquet page or one compressed Arrow record batch may decode to. Writers cut pages at about
# 1 MB, checking every 1,024 values (Arrow's `write_batch_size`), so a real page outgrows 1 GiB only when
# its values average over 1 MB; save_to_disk writes Arrow streams uncompressed (memory-mapped, not copied).
DECODE_MAX_BYTES = 1 << 30
# A page over INFLATE_CHECK_BYTES that inflates more than MAX_INFLATE_RATIO times is a compression bomb,
# refused unread: Apache POI's ZipSecureFile refuses zip entries past the same ratio (minimum inflate ratio
# 0.01). Text compresses 3-10 times; a constant column written without a dictionary, some hundreds, in
# pages of about 1 MB; a run of one character, tens of thousands.
MAX_INFLATE_RATIO = 100
INFLATE_CHECK_BYTES = 64 << 20
STATE_JSON_MAX_BYTES = 1 << 24


def _arrow_rows(batches, max_chars: int, number: int = 0) -> Iterator[RawRecord | Rejected]:
    """Arrow record batches as RawRecords numbered on from `number` + 1 (their row number), turned into
    Python a span of about ARROW_BATCH_BYTES at a time; a row over `max_chars` × UTF8_MAX_BYTES bytes of
    values is Rejected without being turned into Python."""
    limit = max_chars * UTF8_MAX_BYTES
    for batch in batches:
        sizes = row_bytes(batch)
        for start, stop in _spans(sizes, limit):
            if stop - start == 1 and sizes[start] > limit:
                number += 1
                yield Rejected(number, f"row {number}: the record holds {int(sizes[start]):,} bytes, over the limit of "
                               f"{max_chars:,} characters (GOALCOVER_INGEST_MAX_SAMPLE_CHARS); it was not read")
                continue
            for record in batch.slice(start, stop - start).to_pylist():
                number += 1
                yield RawRecord(number, record)


def _spans(sizes: np.ndarray, limit: int) -> Iterator[tuple[int, int]]:
    """[start, stop) row ranges covering every row in order, each of at most ARROW_BATCH_BYTES (or one
    row); a row over `limit` is a range of its own."""
    if sizes.sum() <= ARROW_BATCH_BYTES and not (sizes > limit).any():
        yield 0, len(sizes)
        return
    start, total = 0, 0
    for i, size in enumerate(sizes.tolist()):
        if i > start and (total + size > ARROW_BATCH_BYTES or size > limit):
            yield start, i
            start, total = i, 0
        total += size
        if size > limit:
            yield i, i + 1
            start, total = i + 1, 0
    if start < len(sizes):
        yield start, len(sizes)


def row_bytes(batch) -> np.ndarray:
    """Bytes of values each row of an Arrow record batch holds (int64, one per row): strings and binaries
    by their length, nested lists, maps and structs summed into their row, other values by their width.
    Measured with Arrow's compute kernels, without turning a value into Python."""
    sizes = np.zeros(batch.num_rows, dtype=np.int64)
    for column in batch.columns:
        sizes += _value_bytes(column)
    return sizes


def _value_bytes(array) -> np.ndarray:
    """`row_bytes` for one Arrow array."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind, n = array.type, len(array)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if isinstance(kind, pa.BaseExtensionType):
        return _value_bytes(array.storage)
    if any(test(kind) for test in (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)):
        return pc.binary_length(array).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    if pa.types.is_dictionary(kind):
        values = _value_bytes(array.dictionary)
        indices = array.indices.fill_null(0).to_numpy(zero_copy_only=False)
        return np.where(array.is_null().to_numpy(zero_copy_only=False), 0, values[indices] if len(values) else 0)
    if pa.types.is_map(kind):  # list kernels do not take maps (list_parent_indices aborts on one)
        array = array.cast(pa.list_(pa.struct([kind.key_field, kind.item_field])))
        kind = array.type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        parents = pc.list_parent_indices(array).to_numpy(zero_copy_only=False)
        children = _value_bytes(array.flatten())
        return np.bincount(parents, weights=children, minlength=n).astype(np.int64)
    if pa.types.is_struct(kind):
        return sum((_value_bytes(child) for child in array.flatten()), np.zeros(n, dtype=np.int64))
    if pa.types.is_fixed_size_binary(kind):
        return np.full(n, kind.byte_width, dtype=np.int64)
    try:
        return np.full(n, max(kind.bit_width // 8, 1), dtype=np.int64)
    except ValueError:  # views, unions, run-end encoded: the array's buffers spread evenly over its rows
        return np.full(n, -(-array.get_total_buffer_size() // n), dtype=np.int64)


def _batch_rows(path: Path, metadata, max_chars: int) -> list[int]:
    """Rows to decode at once in each Parquet row group: about ARROW_BATCH_BYTES by the densest data page
    of each column (strings are read dictionary-encoded, so a dictionary page is held once, not per row),
    at most PARQUET_BATCH_ROWS.

    BadInput, before anything is decompressed, for a row group whose rows average more than the record
    limit by the footer, a page that decodes to more than DECODE_MAX_BYTES (or over INFLATE_CHECK_BYTES at
    more than MAX_INFLATE_RATIO times its stored size), or a page whose values average over the record
    limit (a compression bomb, or a record too long to read), naming rows and column."""
    limit = max_chars * UTF8_MAX_BYTES
    batch_rows, first = [], 1
    with open(path, "rb") as f:
        for i in range(metadata.num_row_groups):
            group = metadata.row_group(i)
            rows, size = group.num_rows, group.total_byte_size
            where = f"{path}: rows {first:,}–{first + rows - 1:,} (row group {i + 1})"
            if rows and size / rows > limit:
                raise BadInput(
                    f"{where} hold {size:,} bytes uncompressed, over "
                    f"the limit of {max_chars:,} characters a record (GOALCOVER_INGEST_MAX_SAMPLE_CHARS); they were not read"
                )
            row_density = sum(_column_density(f, group.column(j), rows, limit, where, max_chars) for j in range(group.num_columns))
            batch_rows.append(max(1, min(PARQUET_BATCH_ROWS, ARROW_BATCH_BYTES // max(row_density, 1))))
            first += rows
    return batch_rows


def _column_density(f, chunk, rows: int, limit: int, where: str, max_chars: int) -> int:
    """The most bytes one row may decode to in this column chunk, from its page headers; BadInput for a
    page too big to decode (see `_batch_rows`) or one whose values average over `limit` bytes."""
    column = f"{where}, column {chunk.path_in_schema!r}"
    try:
        pages = list(column_pages(f, chunk))
    except (ValueError, OSError) as exc:
        raise BadInput(f"{column}: the Parquet file is damaged ({exc})") from None
    density = 0
    for page in pages:
        if page.decoded > DECODE_MAX_BYTES:
            raise BadInput(
                f"{column}: a page decodes to {page.decoded:,} bytes, over the {DECODE_MAX_BYTES:,} GoalCover decompresses at once "
                "(a compression bomb?); it was not read. Write the file with smaller pages (pyarrow: write_batch_size=64)"
            )
        if page.decoded > INFLATE_CHECK_BYTES and page.decoded > MAX_INFLATE_RATIO * max(page.stored, 1):
            raise BadInput(
                f"{column}: a page of {page.stored:,} bytes decodes to {page.decoded:,} ({page.decoded // max(page.stored, 1):,} times; "
                f"GoalCover reads pages over {INFLATE_CHECK_BYTES >> 20} MB up to {MAX_INFLATE_RATIO} times): a compression bomb? It was not read. "
                "If the data is real, write the file with smaller pages (pyarrow: write_batch_size=64)"
            )
        if page.decoded > limit * max(page.values, 1):
            raise BadInput(
                f"{column}: a page holds {page.values:,} values in {page.decoded:,} bytes, so a record there is over the limit of "
                f"{max_chars:,} characters (GOALCOVER_INGEST_MAX_SAMPLE_CHARS); it was not read"
            )
        if not page.dictionary:  # a dictionary is decoded once for its row group, and stays encoded
            density = max(density, -(-page.decoded // max(page.values, 1)))
    values_a_row = -(-chunk.num_values // max(rows, 1))  # leaf values per row, for lists
    return density * max(values_a_row, 1)


def read_parquet(source: SourceFile, layout: SourceLayout, max_chars: int = DEFAULT_MAX_RECORD_CHARS) -> Iterator[RawRecord | Rejected]:
    """Parquet in row batches; non-JSON values (bytes, timestamps, decimals, structs) are kept as they are.
    A row group whose rows are over `max_chars` on average uncompressed, or a page too big to decode (see
    `_batch_rows`), is refused unread (BadInput); a row over `max_chars` × UTF8_MAX_BYTES bytes is Rejected."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(source.path)
        layout.arrow_schema = layout.arrow_schema or schema_b64(parquet.schema_arrow)
        # Strings and binaries stay dictionary-encoded as read (one copy of each entry), so a page of
        # indices that repeats one long entry a million times is measured by `row_bytes`, not copied out.
        parquet = pq.ParquetFile(source.path, read_dictionary=_byte_array_columns(parquet.metadata.schema))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise BadInput(f"{source.path}: not a readable Parquet file ({exc})") from None
    batch_rows = _batch_rows(source.path, parquet.metadata, max_chars)
    try:
        number = 0
        for group, rows in enumerate(batch_rows):
            yield from _arrow_rows(parquet.iter_batches(batch_size=rows, row_groups=[group]), max_chars, number)
            number += parquet.metadata.row_group(group).num_rows
    except (pa.ArrowException, OSError) as exc:
        raise BadInput(f"{source.path}: the Parquet file is damaged ({exc})") from None


def _byte_array_columns(schema) -> list[str]:
    """Paths of the leaf columns of a Parquet schema that hold strings or binaries (BYTE_ARRAY, no logical
    type or a text one), as `pq.ParquetFile(read_dictionary=…)` names them."""
    text_types = {"NONE", "STRING", "JSON", "BSON", "ENUM"}
    return [
        column.path for column in (schema.column(i) for i in range(len(schema)))
        if column.physical_type == "BYTE_ARRAY" and column.logical_type.type in text_types
    ]


def read_hf_folder(folder: Path, layout: SourceLayout, max_chars: int = DEFAULT_MAX_RECORD_CHARS) -> Iterator[tuple[Path, RawRecord | Rejected]]:
    """A folder written by `datasets.Dataset.save_to_disk`: Arrow stream files named in state.json, each
    memory-mapped and read batch by batch; rows are numbered from 1 in each file, and a row over
    `max_chars` × UTF8_MAX_BYTES bytes is Rejected. BadInput for a bad state.json or a damaged stream."""
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
        layout.arrow_schema = layout.arrow_schema or schema_b64(reader.schema)
        try:
            _check_compressed_batches(path)
            for item in _arrow_rows(reader, max_chars):
                yield path, item
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise BadInput(f"{path}: the Arrow file is damaged ({exc})") from None


def _check_compressed_batches(path: Path) -> None:
    """BadInput, before anything is decompressed, for an Arrow stream whose compressed record batch (or
    dictionary batch) would decode to more than DECODE_MAX_BYTES. A pass over the memory-mapped
    messages' metadata only: their bodies are not read. Raises pyarrow's errors for a damaged stream."""
    import pyarrow as pa

    for number, message in enumerate(pa.ipc.MessageReader.open_stream(pa.memory_map(str(path)))):
        decoded = compressed_body_bytes(message.metadata.to_pybytes(), message.body)
        if decoded is not None and decoded > DECODE_MAX_BYTES:
            raise BadInput(
                f"{path}: message {number + 1} ({message.type}) holds {message.body.size:,} compressed bytes that decode to "
                f"{decoded:,}, over the {DECODE_MAX_BYTES:,} GoalCover decompresses at once (a compression bomb?); "
                "it was not read. Write the stream uncompressed or in smaller record batches"
            )


def compressed_body_bytes(metadata: bytes, body) -> int | None:
    """Bytes a compressed Arrow IPC message body decodes to, or None for a message without compression.

    Reads the flatbuffer `Message` by hand (Arrow's format/Message.fbs: Message.header is a union, field 1
    its type, field 2 the table; RecordBatch field 2 `buffers`, a vector of (offset, length) int64 pairs,
    field 3 `compression`; DictionaryBatch field 1 its RecordBatch). With body compression every non-empty
    buffer starts with its uncompressed length as a little-endian int64, -1 for one stored as is
    (Arrow's columnar format, "Compression"). ValueError for metadata that is not a flatbuffer Message."""
    view = memoryview(metadata)

    def number(at: int, size: int, signed: bool = False) -> int:
        if at < 0 or at + size > len(view):
            raise ValueError("an IPC message's metadata points outside itself")
        return int.from_bytes(view[at:at + size], "little", signed=signed)

    def field(table: int, index: int) -> int | None:
        vtable = table - number(table, 4, signed=True)
        slot = 4 + 2 * index
        if slot + 2 > number(vtable, 2):
            return None
        offset = number(vtable + slot, 2)
        return table + offset if offset else None

    def table_at(at: int | None) -> int | None:
        return None if at is None else at + number(at, 4)

    root = table_at(0)
    kind_at = field(root, 1)
    kind = number(kind_at, 1) if kind_at is not None else 0
    header = table_at(field(root, 2))
    if header is not None and kind == 2:  # a DictionaryBatch: its data is a RecordBatch
        header = table_at(field(header, 1))
    if header is None or kind not in (2, 3) or field(header, 3) is None:
        return None
    buffers = table_at(field(header, 2))
    if buffers is None:
        return 0
    total, body = 0, memoryview(body) if body is not None else memoryview(b"")
    for i in range(number(buffers, 4)):
        offset, length = number(buffers + 4 + 16 * i, 8, True), number(buffers + 12 + 16 * i, 8, True)
        if length >= 8 and 0 <= offset and offset + 8 <= len(body):
            stored = int.from_bytes(body[offset:offset + 8], "little", signed=True)
            total += length - 8 if stored == -1 else max(stored, 0)
    return total


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

