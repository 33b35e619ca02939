"""Deterministic, schema-valid JSON instances for the fake OpenAI server.

Every value is derived from ``sha256(seed | json-path)``, where the seed is the
request hash: the same request always gets the same instance, different requests
get different (but valid) ones. Field-name conventions (``score``, ``explanation``,
``title``, ``id`` in subgoal lists, ...) make the defaults useful to a pipeline
without writing rules.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from dataclasses import dataclass
from typing import Any, Sequence

__all__ = ["SchemaFaker", "generate_instance", "input_words"]

MAX_DEPTH = 8  # deeper than this (or inside a recursive $ref) values are minimal

_STOPWORDS = frozenset(
    """about above after again against also among because been before being below between
    both could does doing down during each from further have having here into itself just
    more most other over same should some such than that their them then there these they
    this those through under until very were what when where which while will with would
    your yours please following given using json schema return answer respond only output
    field fields value values format object""".split()
)
_FALLBACK_WORDS = ("coverage", "examples", "edge", "cases", "requests", "answers", "quality", "topics")
_VERBS = ("Handle", "Explain", "Detect", "Summarize", "Compare", "Validate", "Plan", "Resolve", "Cover", "Review")
_NOUNS = ("cases", "requests", "details", "scenarios", "questions", "errors", "steps", "examples")

_SENTENCE_NAMES = frozenset({"explanation", "reason", "reasoning", "rationale", "justification"})
_PHRASE_NAMES = frozenset({"title", "label", "name", "heading", "topic"})
_PROSE_NAMES = frozenset({"description", "summary", "details", "feedback", "comment", "notes", "text", "content"})
_UNIT_NAMES = frozenset({"confidence", "probability", "weight", "ratio", "fraction", "share", "coverage"})


def input_words(text: str, limit: int = 40) -> list[str]:
    """Distinct content words of ``text`` (lowercase, stopwords removed) to echo in values."""
    words: list[str] = []
    for word in re.findall(r"[A-Za-z][A-Za-z'-]{3,}", text):
        word = word.lower().strip("'-")
        if word not in _STOPWORDS and word not in words:
            words.append(word)
            if len(words) >= limit:
                break
    return words


def generate_instance(
    schema: dict[str, Any],
    seed: str,
    *,
    words: Sequence[str] = (),
    hint: str = "",
) -> Any:
    """An instance of ``schema`` chosen deterministically from ``seed``.

    ``words`` are echoed in generated prose; ``hint`` is free text about the schema
    (its name, a function description) searched for "subgoal", as are the schema's own
    titles and descriptions.
    """
    return SchemaFaker(schema, seed, words=words, hint=hint).generate()


@dataclass(frozen=True)
class Item:
    """Position of an array element, so its direct ``id`` property can be "S1", "S2", ..."""

    index: int
    in_subgoals: bool
    depth: int

    def owns(self, depth: int) -> bool:
        """True for values that are direct properties of this element."""
        return depth == self.depth + 1


class SchemaFaker:
    """Walks a JSON schema (draft 2020 subset emitted by pydantic/OpenAI) building a value."""

    def __init__(self, schema: dict[str, Any], seed: str, *, words: Sequence[str] = (), hint: str = "") -> None:
        self.root = schema if isinstance(schema, dict) else {}
        self.seed = seed
        self.words = list(words) or list(_FALLBACK_WORDS)
        self.hint = " ".join([hint, str(self.root.get("title", "")), str(self.root.get("description", ""))])
        self._ref_stack: list[str] = []  # $refs being expanded, to spot recursion

    def generate(self) -> Any:
        """A value for the schema (the subset pydantic and OpenAI emit), derived from the seed."""
        return self.value(self.root, path="$", name="", depth=0)

    # ----------------------------------------------------------------- helpers
    def _int(self, path: str, salt: str = "") -> int:
        digest = hashlib.sha256(f"{self.seed}|{path}|{salt}".encode()).digest()
        return int.from_bytes(digest[:8], "big")

    def _unit(self, path: str, salt: str = "") -> float:
        """A float in [0, 1) from the hash."""
        return self._int(path, salt) / 2**64

    def _pick(self, options: Sequence[Any], path: str, salt: str = "") -> Any:
        return options[self._int(path, salt) % len(options)]

    def _word(self, path: str, salt: str) -> str:
        return self._pick(self.words, path, salt)

    def _distinct_words(self, path: str, salt: str, count: int) -> list[str]:
        """Up to ``count`` different input words (consecutive from a hashed offset)."""
        start = self._int(path, salt)
        count = min(count, len(self.words))
        return [self.words[(start + k) % len(self.words)] for k in range(count)]

    def _resolve(self, schema: Any, depth: int = 0) -> dict[str, Any]:
        """Follow local ``$ref``s and merge ``allOf`` so callers see one plain schema."""
        if not isinstance(schema, dict):
            return {} if schema is not False else {"not": {}}
        if "$ref" in schema and depth < 32:
            target = self._lookup(schema["$ref"])
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            return self._resolve({**target, **siblings}, depth + 1)
        if "allOf" in schema:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for sub in schema["allOf"]:
                part = self._resolve(sub, depth + 1)
                props = {**merged.get("properties", {}), **part.get("properties", {})}
                required = list(dict.fromkeys(merged.get("required", []) + part.get("required", [])))
                merged = {**part, **merged, "properties": props, "required": required}
                if not props:
                    merged.pop("properties")
                if not required:
                    merged.pop("required")
            return merged
        return schema

    def _lookup(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#"):
            return {}  # remote refs are never sent to OpenAI
        node: Any = self.root
        for part in ref.lstrip("#").strip("/").split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return node if isinstance(node, dict) else {}

    def _is_recursive(self, schema: Any) -> bool:
        return isinstance(schema, dict) and schema.get("$ref") in self._ref_stack

    def _choose_branch(self, branches: list[Any], depth: int) -> Any:
        """First non-null branch of anyOf/oneOf; null when nesting is deep or recursive."""
        non_null = [b for b in branches if self._resolve(b).get("type") != "null"]
        deep = depth >= MAX_DEPTH or any(self._is_recursive(b) for b in non_null)
        if len(non_null) < len(branches) and (deep or not non_null):
            return {"type": "null"}
        return non_null[0] if non_null else {"type": "null"}

    @staticmethod
    def _type_of(schema: dict[str, Any]) -> str | None:
        kind = schema.get("type")
        if isinstance(kind, list):
            non_null = [k for k in kind if k != "null"]
            return non_null[0] if non_null else "null"
        if kind:
            return kind
        if "properties" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        return None

    # ------------------------------------------------------------------ values
    def value(self, schema: Any, *, path: str, name: str, depth: int, item: Item | None = None) -> Any:
        """Value for ``schema`` at ``path``; ``name`` is the property name and ``item`` the
        innermost enclosing array element (see ``Item``)."""
        ref = schema.get("$ref") if isinstance(schema, dict) else None
        if ref is None:
            return self._value(schema, path=path, name=name, depth=depth, item=item)
        if ref in self._ref_stack:  # a tree: stop growing it
            depth = max(depth, MAX_DEPTH)
        self._ref_stack.append(ref)
        try:
            return self._value(schema, path=path, name=name, depth=depth, item=item)
        finally:
            self._ref_stack.pop()

    def _value(self, schema: Any, *, path: str, name: str, depth: int, item: Item | None) -> Any:
        schema = self._resolve(schema)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return self._pick(schema["enum"], path, "enum")
        for key in ("anyOf", "oneOf"):
            if schema.get(key):
                branch = self._choose_branch(schema[key], depth)
                rest = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf", "default")}
                if isinstance(branch, dict) and "$ref" in branch:  # keep the $ref for recursion tracking
                    return self.value({**rest, **branch}, path=path, name=name, depth=depth, item=item)
                return self._value({**rest, **self._resolve(branch)}, path=path, name=name, depth=depth, item=item)
        kind = self._type_of(schema)
        if kind is None:
            if "default" in schema:
                return schema["default"]
            kind = "string"
        maker = {
            "object": self._object,
            "array": self._array,
            "string": self._string,
            "integer": self._integer,
            "number": self._number,
            "boolean": lambda s, **kw: self._int(kw["path"], "bool") % 2 == 0,
            "null": lambda s, **kw: None,
        }.get(kind, self._string)
        return maker(schema, path=path, name=name, depth=depth, item=item)

    def _object(self, schema: dict[str, Any], *, path: str, name: str, depth: int, item: Any) -> dict[str, Any]:
        properties = schema.get("properties") or {}
        return {
            key: self.value(sub, path=f"{path}.{key}", name=key, depth=depth + 1, item=item)
            for key, sub in properties.items()
        }

    def _array(self, schema: dict[str, Any], *, path: str, name: str, depth: int, item: Any) -> list[Any]:
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list):  # tuples
            return [
                self.value(sub, path=f"{path}[{i}]", name=name, depth=depth + 1) for i, sub in enumerate(prefix)
            ]
        raw_items = schema.get("items", {})
        items = self._resolve(raw_items)
        item_props = items.get("properties") or {}
        subgoal_like = "title" in item_props and "description" in item_props
        count = self._array_length(schema, path, depth, subgoal_like)
        in_subgoals = self._mentions_subgoal(name, schema, items)
        values: list[Any] = []
        for i in range(count * 4 if schema.get("uniqueItems") else count):
            element = Item(i, in_subgoals, depth + 1)
            value = self.value(raw_items, path=f"{path}[{i}]", name=name, depth=depth + 1, item=element)
            if schema.get("uniqueItems") and value in values:
                continue
            values.append(value)
            if len(values) == count:
                break
        return values

    def _array_length(self, schema: dict[str, Any], path: str, depth: int, subgoal_like: bool) -> int:
        """3–6 items by default (4–6 for subgoal-like objects), clamped to min/maxItems."""
        low = int(schema.get("minItems", 0))
        high = schema.get("maxItems")
        high = int(high) if high is not None else 10**6
        if depth >= MAX_DEPTH:
            return low
        want_low, want_high = (4, 6) if subgoal_like else (3, 6)
        start, stop = max(low, want_low), min(high, want_high)
        if start > stop:  # the schema's bounds exclude our preferred range
            return high if high < want_low else low
        return start + self._int(path, "len") % (stop - start + 1)

    def _mentions_subgoal(self, name: str, array: dict[str, Any], items: dict[str, Any]) -> bool:
        hints = [self.hint, name] + [part.get(key) for part in (array, items) for key in ("title", "description")]
        return any("subgoal" in str(h).lower() for h in hints if h)

    # ----------------------------------------------------------------- strings
    def _string(self, schema: dict[str, Any], *, path: str, name: str, depth: int, item: Any) -> str:
        element = item.index if item is not None and item.owns(depth) else None
        text = self._format_string(schema.get("format"), path) or self._named_string(name.lower(), path, element, item)
        return self._fit_length(text, schema, path)

    def _format_string(self, fmt: str | None, path: str) -> str | None:
        n = self._int(path, "fmt")
        day = 1 + n % 28
        formats = {
            "date-time": f"2024-01-{day:02d}T{n % 24:02d}:00:00Z",
            "date": f"2024-01-{day:02d}",
            "time": f"{n % 24:02d}:{n % 60:02d}:00",
            "email": f"user{n % 1000}@example.com",
            "uri": f"https://example.com/{self._word(path, 'uri')}",
            "url": f"https://example.com/{self._word(path, 'uri')}",
            "uuid": str(uuid.UUID(int=n << 64 | self._int(path, "uuid"))),
            "duration": f"PT{1 + n % 59}M",
        }
        return formats.get(fmt or "")

    def _named_string(self, name: str, path: str, index: int | None, item: Item | None) -> str:
        """``index`` is set when this is a direct property of an array element."""
        if name == "id" and index is not None:
            return f"S{index + 1}" if item and item.in_subgoals else f"item-{index + 1}"
        if name in ("subgoal_id", "subgoalid"):
            return f"S{index + 1}" if index is not None else f"S{1 + self._int(path, 'sid') % 4}"
        if name == "id" or name.endswith("_id"):
            return f"id-{self._int(path, 'id') % 16**6:06x}"
        first, second = (self._distinct_words(path, "pair", 2) * 2)[:2]
        if name in _SENTENCE_NAMES:
            return f"The sample shows {first} but lacks {second}."
        if name in _PHRASE_NAMES or name.endswith(("_name", "_title", "_label")):
            return self._phrase(path)
        if name in _PROSE_NAMES:
            verb, noun = self._pick(_VERBS, path, "verb"), self._pick(_NOUNS, path, "noun")
            return f"{verb} {first} {noun} involving {second}."
        return f"{first} {second}"

    def _phrase(self, path: str) -> str:
        """2–4 words: a verb plus one to three input words."""
        extra = 1 + self._int(path, "plen") % 3
        return " ".join([self._pick(_VERBS, path, "verb")] + self._distinct_words(path, "phrase", extra))

    def _fit_length(self, text: str, schema: dict[str, Any], path: str) -> str:
        min_len = int(schema.get("minLength", 0))
        max_len = schema.get("maxLength")
        i = 0
        while len(text) < min_len:
            text = f"{text} {self._word(path, f'pad{i}')}"
            i += 1
        if max_len is not None and len(text) > int(max_len):
            text = text[: int(max_len)]
            stripped = text.rstrip()
            if len(stripped) >= min_len and stripped:
                text = stripped
        return text

    # ----------------------------------------------------------------- numbers
    def _integer(self, schema: dict[str, Any], *, path: str, name: str, depth: int, item: Any) -> int:
        if name.lower() == "id" and item is not None and item.owns(depth):
            default = (item.index + 1, item.index + 1)
        elif name.lower() == "score":
            default = (1, 5)
        else:
            default = (0, 10)
        low, high = _bounds(schema, default, integer=True)
        step = schema.get("multipleOf")
        if isinstance(step, (int, float)) and step > 0:
            first, last = math.ceil(low / step), math.floor(high / step)
            if first <= last:
                return int((first + self._int(path, "int") % (last - first + 1)) * step)
        return low + self._int(path, "int") % (high - low + 1)

    def _number(self, schema: dict[str, Any], *, path: str, name: str, depth: int, item: Any) -> float:
        lowered = name.lower()
        if lowered == "score":
            low, high = _bounds(schema, (1, 5), integer=True)
            return float(low + self._int(path, "int") % (high - low + 1))
        default = (0.0, 1.0) if lowered in _UNIT_NAMES else (0.0, 100.0)
        low, high = _bounds(schema, default, integer=False)
        value = round(low + (high - low) * self._unit(path, "num"), 2)
        if not _in_bounds(value, schema):
            value = (low + high) / 2
        return value


def _bounds(schema: dict[str, Any], default: tuple[float, float], *, integer: bool) -> tuple[Any, Any]:
    """Inclusive [low, high] honouring minimum/maximum and (numeric) exclusive bounds."""
    low, high = schema.get("minimum"), schema.get("maximum")
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(ex_low, bool):  # draft-4 style boolean flags
        ex_low, low = (low, None) if ex_low else (None, low)
    if isinstance(ex_high, bool):
        ex_high, high = (high, None) if ex_high else (None, high)
    if integer:
        low = math.ceil(low) if low is not None else None
        high = math.floor(high) if high is not None else None
        if ex_low is not None:
            candidate = math.floor(ex_low) + 1
            low = candidate if low is None else max(low, candidate)
        if ex_high is not None:
            candidate = math.ceil(ex_high) - 1
            high = candidate if high is None else min(high, candidate)
    else:
        if ex_low is not None:
            low = ex_low if low is None else max(low, ex_low)
        if ex_high is not None:
            high = ex_high if high is None else min(high, ex_high)
    span = default[1] - default[0]
    if low is None and high is None:
        return default
    if low is None:
        low = default[0] if default[0] <= high else high - span
    if high is None:
        high = default[1] if default[1] >= low else low + span
    if high < low:
        high = low
    return low, high


def _in_bounds(value: float, schema: dict[str, Any]) -> bool:
    checks = [
        ("minimum", lambda v, b: v >= b),
        ("maximum", lambda v, b: v <= b),
        ("exclusiveMinimum", lambda v, b: v > b),
        ("exclusiveMaximum", lambda v, b: v < b),
    ]
    return all(
        check(value, schema[key])
        for key, check in checks
        if isinstance(schema.get(key), (int, float)) and not isinstance(schema.get(key), bool)
    )
