"""Text from the data made inert for a terminal: the one helper every CLI print of a data string (sample
text and ids, file names, explanations, gap labels, model replies, error messages that quote them) goes
through, and the JSON writer of `--json`.

A dataset can hold terminal escape sequences: OSC 52 writes the clipboard, `ESC[2J` clears the screen,
`ESC[8m` hides the text after it, a carriage return or backspaces overwrite what was printed, bidi
overrides (U+202E) show text in another order than it is (the "Trojan Source" trick), and the 8-bit C1
controls (U+009B is a CSI of its own) do the same on some terminals. Rich strips only a few of these
(BEL, BS, VT, FF, CR), so they are removed here: whole escape sequences (ECMA-48: CSI, OSC, DCS, SOS, PM,
APC strings and two-character escapes), then every other C0/C1 control except tab and newline, and the
bidi embedding, override and isolate characters.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rich.markup import escape

# ECMA-48 sequences, 7-bit (ESC …) and 8-bit (C1) forms: strings (OSC, DCS, SOS, PM, APC) up to their
# terminator (ST, BEL) or the end of the text; CSI up to its final byte; any other two-character escape.
_SEQUENCE = re.compile(
    r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?"
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def inert(text: Any, markup: bool = True) -> str:
    """`text` (str() of any value) with no terminal escape sequence, control character (tab and newline
    kept; a CRLF's CR dropped) or bidi override left, and with `markup=True` (the default, for
    `console.print` with markup on and table cells) Rich markup escaped so `[red]` prints as written.
    Never raises."""
    text = _CONTROLS.sub("", _SEQUENCE.sub("", "" if text is None else str(text)))
    return escape(text) if markup else text


def _escape_unsafe(match: re.Match) -> str:
    return f"\\u{ord(match.group(0)):04x}"


def inert_json(payload: Any) -> str:
    """`payload` as one line of JSON (non-ASCII text kept readable) in which no character a terminal
    acts on appears raw: JSON already escapes C0 controls; C1 controls and bidi overrides are written as
    \\uXXXX escapes too, so the JSON means the same and `jq` gives back the exact data."""
    return _CONTROLS.sub(_escape_unsafe, json.dumps(payload, ensure_ascii=False, default=str))


__all__ = ["inert", "inert_json"]
