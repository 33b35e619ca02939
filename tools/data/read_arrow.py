"""Parquet files and Hugging Face `save_to_disk` folders (Arrow streams) into raw records, in row batches;
values that are not JSON (bytes, timestamps, decimals) are kept as they are, the Arrow schema noted for export."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from goalcover.tools.core.errors import BadInput
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

PARQUET_BATCH_ROWS = 2048
STATE_JSON_MAX_BYTES = 1 << 24


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
    layout.arrow_schema = layout.arrow_schema or schema_b64(parquet.schema_arrow)
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
        layout.arrow_schema = layout.arrow_schema or schema_b64(reader.schema)
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

