"""The pages of a Parquet column chunk, from their headers: how many bytes each decodes to and how many
values it holds, read without decompressing anything.

Arrow decompresses a Parquet page whole before it decodes a value of it, so the page is the unit of
memory a reader cannot split. Writers cut pages at about 1 MB (Arrow's and parquet-mr's default
`data_page_size`; a dictionary page at 1 MB, `dictionary_pagesize_limit`), and a page outgrows that only
to hold one value that is larger. A compression bomb's page is gigabytes. pyarrow does not expose page
headers, so they are read here: each page starts with a Thrift `PageHeader` in the compact protocol
(Apache Parquet, `parquet.thrift`; Apache Thrift, `thrift-compact-protocol.md`), followed by
`compressed_page_size` bytes of data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

HEADER_READ_BYTES = 1 << 16  # a page header is read from a window this large (statistics included)
MAX_DEPTH = 16  # Thrift structs nest this deep at most in a page header (they nest 3 deep)
# PageHeader fields (parquet.thrift): 1 type, 2 uncompressed_page_size, 3 compressed_page_size,
# 5 data_page_header, 7 dictionary_page_header, 8 data_page_header_v2; in each of those, 1 is num_values.
DICTIONARY_PAGE = 2  # PageType.DICTIONARY_PAGE
_VALUE_HEADERS = (5, 7, 8)


@dataclass(frozen=True)
class Page:
    """One page of a column chunk: `decoded` bytes once decompressed from `stored` bytes, `values` it holds
    (leaf values, nulls counted; for a dictionary page, the dictionary's entries) and whether it is the
    dictionary."""

    decoded: int
    stored: int
    values: int
    dictionary: bool


def column_pages(f: IO[bytes], chunk) -> Iterator[Page]:
    """The pages of `chunk` (a `pyarrow.parquet.ColumnChunkMetaData`) in the open Parquet file `f`.

    Walks the chunk from its first page (the dictionary page where there is one) to its end, header to
    header. ValueError where a header is not a Thrift PageHeader or a page leads outside the chunk."""
    offset = chunk.data_page_offset
    if chunk.has_dictionary_page and chunk.dictionary_page_offset and chunk.dictionary_page_offset < offset:
        offset = chunk.dictionary_page_offset
    end = offset + chunk.total_compressed_size
    while offset < end:
        f.seek(offset)
        window = f.read(HEADER_READ_BYTES)
        header, length = _struct(memoryview(window), 0, 0)
        kind, decoded, stored = header.get(1), header.get(2), header.get(3)
        if not all(isinstance(v, int) for v in (kind, decoded, stored)) or decoded < 0 or stored < 0:
            raise ValueError(f"the page header at byte {offset:,} is not a Parquet PageHeader")
        values = next((h.get(1) for field in _VALUE_HEADERS if isinstance(h := header.get(field), dict)), 0)
        yield Page(decoded, stored, values if isinstance(values, int) and values > 0 else 0, kind == DICTIONARY_PAGE)
        offset += length + stored


def _struct(buf: memoryview, pos: int, depth: int) -> tuple[dict[int, Any], int]:
    """A compact-protocol struct at `pos`: ({field id: int value or nested struct dict}, position after
    it). Other values (strings, lists, doubles) are skipped. ValueError past the buffer or MAX_DEPTH."""
    if depth > MAX_DEPTH:
        raise ValueError("a Thrift struct nested too deeply for a page header")
    fields: dict[int, Any] = {}
    field_id = 0
    while True:
        byte = _byte(buf, pos)
        pos += 1
        kind = byte & 0x0F
        if kind == 0:  # STOP
            return fields, pos
        delta = byte >> 4
        if delta:
            field_id += delta
        else:
            raw, pos = _varint(buf, pos)
            field_id = _zigzag(raw)
        fields[field_id], pos = _value(buf, pos, kind, depth)


def _value(buf: memoryview, pos: int, kind: int, depth: int) -> tuple[Any, int]:
    """One compact-protocol value of type `kind` at `pos`: (the value where it is an integer, a bool or a
    struct, else None; position after it)."""
    if kind in (1, 2):  # BOOLEAN_TRUE, BOOLEAN_FALSE: the value is in the type
        return kind == 1, pos
    if kind == 3:  # I8
        return _byte(buf, pos), pos + 1
    if kind in (4, 5, 6):  # I16, I32, I64: zigzag varints
        raw, pos = _varint(buf, pos)
        return _zigzag(raw), pos
    if kind == 7:  # DOUBLE
        return None, _skip(buf, pos, 8)
    if kind == 8:  # BINARY: a varint length, then the bytes
        size, pos = _varint(buf, pos)
        return None, _skip(buf, pos, size)
    if kind in (9, 10):  # LIST, SET: size (high nibble, 15 = a varint follows) and element type
        head = _byte(buf, pos)
        pos += 1
        size, element = head >> 4, head & 0x0F
        if size == 15:
            size, pos = _varint(buf, pos)
        for _ in range(size):
            if element in (1, 2):  # a boolean in a list takes a byte
                pos = _skip(buf, pos, 1)
            else:
                _, pos = _value(buf, pos, element, depth + 1)
        return None, pos
    if kind == 11:  # MAP: varint size, then key and value types in one byte
        size, pos = _varint(buf, pos)
        if size:
            types = _byte(buf, pos)
            pos += 1
            for _ in range(size):
                _, pos = _value(buf, pos, types >> 4, depth + 1)
                _, pos = _value(buf, pos, types & 0x0F, depth + 1)
        return None, pos
    if kind == 12:  # STRUCT
        return _struct(buf, pos, depth + 1)
    if kind == 13:  # UUID
        return None, _skip(buf, pos, 16)
    raise ValueError(f"unknown Thrift compact type {kind}")


def _byte(buf: memoryview, pos: int) -> int:
    if pos >= len(buf):
        raise ValueError("a Parquet page header runs past what was read")
    return buf[pos]


def _skip(buf: memoryview, pos: int, size: int) -> int:
    if size < 0 or pos + size > len(buf):
        raise ValueError("a Parquet page header runs past what was read")
    return pos + size


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    """An unsigned LEB128 varint at `pos` (at most 10 bytes): (value, position after it)."""
    value = shift = 0
    for _ in range(10):
        byte = _byte(buf, pos)
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise ValueError("a varint longer than 10 bytes in a Parquet page header")


def _zigzag(raw: int) -> int:
    return (raw >> 1) ^ -(raw & 1)
