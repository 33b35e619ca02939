"""Record values that every store can hold: checked on read, encoded losslessly, filterable where possible.

A record is kept untouched for export, but it also has to pass through SQLite (as JSON text), Chroma
(as metadata) and UTF-8. Three rules, applied per record while reading, so a bad value is an error naming
its line and field (and `--skip-invalid` can skip that one record) rather than a crash at write time:

- `check_text(record)`: every key and string is valid Unicode (a lone UTF-16 surrogate such as
  `"\\ud800"` parses as JSON but cannot be written as UTF-8).
- `to_storable` / `from_storable`: values JSON cannot hold (Parquet bytes, timestamps, dates, times,
  decimals, durations; non-finite floats) are wrapped as `{"$goalcover": TYPE, "value": …}` and come back
  as the same Python objects, so a Parquet export gets its own column types back.
- `index_fields(record)`: the record's fields as Chroma metadata under the `field.` namespace (so a user's
  `score_S1` never meets the judge's `score_S1`). Chroma refuses or silently alters some keys and values
  (checked against chromadb 1.5: keys `""`, `$…`, `#…` refused, `chroma:…` dropped, None and dicts
  refused, NaN/inf drop the whole metadata, ints past 64 bits become floats); the namespace makes every
  key safe, and values it cannot hold exactly are left out of the index and reported, never lost.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import re
from typing import Any

from goalcover.tools.core.errors import field_path

TAG = "$goalcover"
FIELD_PREFIX = "field."
# Longer strings are text, not labels: not worth a metadata filter.
MAX_INDEX_CHARS = 256
INT64 = (-(2**63), 2**63 - 1)


def field_name(path: tuple[str | int, ...]) -> str:
    """("messages", 0, "content") -> "messages[0].content", as error messages name fields."""
    return field_path(path) or "(record)"


def check_text(value: Any, path: tuple[str | int, ...] = ()) -> None:
    """Raise ValueError naming the field when a key or string cannot be encoded as UTF-8."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = value[exc.start]
            raise ValueError(
                f"field {field_name(path)!r}: holds a lone surrogate (\\u{ord(bad):04x}), which is not valid Unicode; "
                "fix or drop that character"
            ) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            try:
                key.encode("utf-8")
            except UnicodeEncodeError:
                shown = key.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
                raise ValueError(f"the key {shown!r} in {field_name(path)!r} holds a lone surrogate, which is not valid Unicode") from None
            check_text(item, (*path, key))
    elif isinstance(value, list):
        for n, item in enumerate(value):
            check_text(item, (*path, n))


def to_storable(value: Any) -> Any:
    """A JSON-safe copy of `value`; non-JSON values become tagged objects that `from_storable` reverses."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {TAG: "float", "value": repr(value)}
    if isinstance(value, dict):
        return {key: to_storable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_storable(item) for item in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {TAG: "bytes", "value": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dt.datetime):
        return {TAG: "datetime", "value": value.isoformat()}
    if isinstance(value, dt.date):
        return {TAG: "date", "value": value.isoformat()}
    if isinstance(value, dt.time):
        return {TAG: "time", "value": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {TAG: "timedelta", "value": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, decimal.Decimal):
        return {TAG: "decimal", "value": str(value)}
    if hasattr(value, "tolist"):  # numpy arrays and scalars from Arrow extension types
        return to_storable(value.tolist())
    raise ValueError(f"a value of type {type(value).__name__} cannot be stored; convert that column to text or numbers")


_DECODE = {
    "float": float,
    "bytes": base64.b64decode,
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "timedelta": lambda v: dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "decimal": decimal.Decimal,
}


def from_storable(value: Any) -> Any:
    """The inverse of `to_storable`: tagged objects back to bytes, datetimes, decimals, …"""
    if isinstance(value, dict):
        if len(value) == 2 and value.get(TAG) in _DECODE and "value" in value:
            return _DECODE[value[TAG]](value["value"])
        return {key: from_storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_storable(item) for item in value]
    return value


def index_value(value: Any) -> tuple[Any, str | None]:
    """(the value as Chroma metadata, None) or (None, why it stays out of the index)."""
    if isinstance(value, bool):
        return value, None
    if isinstance(value, int):
        if INT64[0] <= value <= INT64[1]:
            return value, None
        return None, "an integer beyond 64 bits (the index would round it)"
    if isinstance(value, float):
        return (value, None) if math.isfinite(value) else (None, "not a finite number")
    if isinstance(value, str):
        return (value, None) if len(value) <= MAX_INDEX_CHARS else (None, None)  # long text: not a label
    if value is None:
        return None, None
    return None, None  # lists, objects, bytes: kept in the record, not filterable


def index_fields(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(metadata under `field.NAME`, {field: why it was left out}) for one record's top-level fields."""
    meta: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for key, value in record.items():
        if key == "id":
            continue
        kept, why = index_value(value)
        if kept is not None:
            meta[FIELD_PREFIX + key] = kept
        elif why:
            skipped[key] = why
    return meta, skipped


_CELL_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")
_CELL_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_CELL_BOOL = {"true": True, "false": False}


def typed_cell(value: Any) -> Any:
    """A CSV cell's text as the value it writes (`"3"` → 3, `"2.5"` → 2.5, `"true"`/`"FALSE"` → bool), so
    `--where difficulty>=3` and `verified=true` compare CSV labels as they compare JSON ones; any other
    text (`"007"`, `"3 apples"`, `""`) and any non-string stays as it is. Integers are those of at most
    18 digits (within the index's 64-bit range)."""
    if not isinstance(value, str):
        return value
    if _CELL_INT.fullmatch(value):
        return int(value)
    if _CELL_FLOAT.fullmatch(value):
        number = float(value)
        return number if math.isfinite(number) else value
    return _CELL_BOOL.get(value.lower(), value)
