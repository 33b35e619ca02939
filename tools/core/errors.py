"""Errors the engine raises on purpose.

Every error a user can cause carries one readable message that names the file, line or field; the CLI
prints it and exits 2. Anything else is a bug and exits 1.
"""

from __future__ import annotations


class GoalCoverError(Exception):
    """A failure the user should read, not a traceback. Exit code 1."""

    exit_code = 1


class BadInput(GoalCoverError):
    """The user's file, argument or settings are wrong. Exit code 2."""

    exit_code = 2


class ConfigError(BadInput):
    """A command needs a setting (a model, an endpoint) that is not configured."""


def field_path(loc: tuple | list) -> str:
    """A pydantic error location as a reader writes it: ("messages", 0, "role") -> "messages[0].role"."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def describe_validation_error(exc, limit: int = 1) -> str:
    """One readable line for a pydantic ValidationError, the first `limit` problems joined by "; ":
    "field 'messages[0].role' is missing" or "field 'score': Input should be ... (got str)".

    The one formatter for files, settings, tool arguments and model replies; callers put the file, line or
    tool name in front.
    """
    parts = []
    for err in exc.errors()[:limit]:
        where = field_path(err["loc"]) or "value"
        if err["type"] == "missing":
            parts.append(f"field {where!r} is missing")
            continue
        got = err.get("input")
        got_text = f" (got {type(got).__name__})" if got is not None and err["type"].endswith("_type") else ""
        parts.append(f"field {where!r}: {err['msg']}{got_text}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
