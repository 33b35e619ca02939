"""Parquet page headers read by hand (Thrift compact protocol): they agree with what pyarrow wrote, and a
damaged header is a ValueError, never another exception or a hang."""

from __future__ import annotations

import io
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from goalcover.tools.data.parquet_pages import column_pages


def written(tmp_path, **options):
    rows = [{"messages": [{"role": "user", "content": f"question {i} " * (i % 7)}, {"role": "assistant", "content": "a" * (i % 300)}],
             "score": i / 3, "flag": i % 2 == 0} for i in range(5000)]
    path = tmp_path / "chats.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, **options)
    return path


@pytest.mark.parametrize("options", [
    {},
    {"use_dictionary": False, "compression": "zstd", "data_page_size": 4096},
    {"data_page_version": "2.0", "compression": "gzip", "write_statistics": True, "row_group_size": 1500},
])
def test_pages_add_up_to_the_column_chunks_the_footer_describes(tmp_path, options):
    path = written(tmp_path, **options)
    metadata = pq.ParquetFile(path).metadata
    with path.open("rb") as f:
        for i in range(metadata.num_row_groups):
            for j in range(metadata.num_columns):
                chunk = metadata.row_group(i).column(j)
                pages = list(column_pages(f, chunk))
                assert sum(p.values for p in pages if not p.dictionary) == chunk.num_values
                # the footer's sizes count each page's header too
                assert sum(p.decoded for p in pages) < chunk.total_uncompressed_size <= sum(p.decoded for p in pages) + 200 * len(pages)
                assert sum(p.stored for p in pages) < chunk.total_compressed_size


def test_damaged_headers_are_value_errors(tmp_path):
    path = written(tmp_path, use_dictionary=False, data_page_size=4096)
    data = path.read_bytes()
    chunk = pq.ParquetFile(path).metadata.row_group(0).column(1)
    start = chunk.data_page_offset
    rng = random.Random(7)
    outcomes = set()
    for trial in range(400):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            damaged[start + rng.randrange(40)] = rng.randrange(256)
        try:
            for _ in column_pages(io.BytesIO(bytes(damaged)), chunk):
                pass
            outcomes.add("read")
        except ValueError:
            outcomes.add("refused")
    assert "refused" in outcomes
    with pytest.raises(ValueError):
        list(column_pages(io.BytesIO(data[:start + 3]), chunk))
