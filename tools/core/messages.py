"""The one error path: any exception as the one line a user reads, the same in the CLI, the agent and the
chat app.

- A `GoalCoverError` (bad input, settings, a failed paid step) is written for the user: its own message,
  whole.
- A pydantic `ValidationError`: field by field (`describe_validation_error`).
- An API error (openai's, with a `status_code`): its class, status and the start of its text.
- Anything else is a bug (`is_bug`): its class and the start of its text; the CLI adds how to see the
  traceback (GOALCOVER_DEBUG), the app logs it.

Everything but a GoalCoverError is folded onto one line and cut at `MAX_CHARS`.
"""

from __future__ import annotations

from pydantic import ValidationError

from goalcover.tools.core.errors import GoalCoverError, describe_validation_error

# Characters of an exception's own text kept in its line (a reply body or a stack of causes can be long).
MAX_CHARS = 300
INTERNAL = "Internal error"


def is_bug(exc: BaseException) -> bool:
    """True for an exception nobody raised on purpose: not a GoalCoverError, a ValidationError or an API
    error answered by an endpoint."""
    return not isinstance(exc, (GoalCoverError, ValidationError)) and getattr(exc, "status_code", None) is None


def _one_line(text: str, limit: int = MAX_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def user_message(exc: BaseException, limit: int = MAX_CHARS) -> str:
    """The user's one-line message for `exc` (see the module docstring); `limit` characters of an
    exception's own text (not applied to a GoalCoverError, whose message is written for the user)."""
    if isinstance(exc, GoalCoverError):
        return str(exc)
    if isinstance(exc, ValidationError):
        return _one_line(describe_validation_error(exc, limit=5), limit * 2)
    status = getattr(exc, "status_code", None)
    kind = f"{type(exc).__name__}{f' {status}' if status else ''}"
    text = _one_line(str(exc), limit)
    return f"{kind}: {text}" if text else kind


def internal_error(exc: BaseException) -> str:
    """The line shown for a bug: "Internal error: Class: text"."""
    return f"{INTERNAL}: {user_message(exc)}"
