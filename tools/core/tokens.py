"""The one local token estimate, for dry runs and plans (tokenizers of hosted models are not available
offline, and tiktoken downloads its encodings at run time). Real counts come from the endpoint's `usage`."""

from __future__ import annotations

import math

CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    """About one token per 4 characters of `text`, rounded up (0 for an empty string)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)
