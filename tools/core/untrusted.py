"""Untrusted text (sample text, ids, explanations, excerpts, gap labels, file names) made safe to put
inside a prompt's data block: one function, `untrusted`, used by every prompt builder.

A data block is delimited by tags such as `<sample>` … `</sample>`. Text from the dataset must not be able
to close (or open) such a block, whatever way it spells the tag: `</sample>`, `< /sample>`, `<\\n/sample>`,
the fullwidth `＜/sample＞`, letters from other scripts that look Latin (Cyrillic `ѕ`, `а`, `е`…), zero-width
or other invisible characters inside the tag, or a backslash for the slash. It must not be able to write a
chat template's special tokens either (`<|im_end|>`, `<|eot_id|>`), which some local servers parse in the
text they are sent.

How: every character that reads as "<" (ASCII, fullwidth, small, and the usual look-alikes) is looked at
together with what follows it, as a *skeleton*: Unicode NFKC, lower case, invisible characters (category
Cf, e.g. U+200B) dropped, look-alike letters mapped to Latin (a targeted table of the
Cyrillic and Greek letters that look like the Latin letters of the tag names; Unicode's full confusables
table, UTS #39, is far larger than these names need). When the skeleton starts with an optional slash and
one of the delimiter names, or with `|`, the "<" becomes `&lt;`: the model still reads a less-than sign,
but no tag. Everything else is kept as written (code with `a < b`, `<div>` and non-Latin text are not
touched), so judges see the sample as it is.
"""

from __future__ import annotations

import re
import unicodedata

# The tag names GOALCOVER's prompts use for data blocks (tools/judge/prompts.py, agent/prompts.py), and the
# roles a chat template may spell as tags.
DELIMITERS = (
    "samples", "sample", "data", "examples", "example", "explanations", "explanation", "facts", "subgoal",
    "system", "user", "assistant", "instructions", "tool",
)

# Characters that read as "<": NFKC folds the fullwidth and small forms; the others are look-alikes.
_LESS_THAN = "<\uff1c\ufe64\u2039\u2329\u27e8\u3008\u02c2\u1438\u276e\u276c\u29fc\u00ab\u300a\u2264\u226a"
# Characters that read as "/" or "\" (after NFKC): division slash, fraction slash, big solidus…
_SLASHES = "/\\\u2215\u2044\u29f8\u29f9\u2571\u2572\u27cb\u27cd\u3033\u30ce\uff3c\ufe68"
# Look-alike letters of other scripts → the Latin letter they look like (Cyrillic, Greek; lower case,
# as the skeleton is case-folded first). Only the letters of the tag names above need an entry.
_LOOKALIKES = str.maketrans({
    "а": "a", "ɑ": "a", "α": "a", "е": "e", "ё": "e", "ε": "e", "о": "o", "ο": "o", "σ": "o", "р": "p",
    "ρ": "p", "с": "c", "ϲ": "c", "ѕ": "s", "ꮪ": "s", "х": "x", "χ": "x", "у": "y", "γ": "y", "і": "i",
    "ι": "i", "ӏ": "l", "ⅼ": "l", "ı": "i", "ј": "j", "т": "t", "τ": "t", "м": "m", "ԁ": "d", "ɗ": "d",
    "ո": "n", "η": "n", "ԛ": "q", "һ": "h", "ѵ": "v", "ν": "v", "ԝ": "w", "ω": "w", "ʏ": "y", "κ": "k",
    "к": "k", "ɡ": "g", "ց": "g", "ƒ": "f", "ꜰ": "f", "ᴍ": "m", "ᴘ": "p", "ʟ": "l", "ꜱ": "s", "ᴀ": "a",
    "ᴇ": "e", "ᴛ": "t", "ᴜ": "u", "υ": "u", "ս": "u", "ᴏ": "o",
})
_SKELETON_SPAN = 48  # characters after a "<" that are enough to spell "/ explanations" with padding
_TAG = re.compile(r" *(?:[/\\] *)?(?:" + "|".join(DELIMITERS) + r")(?![a-z0-9_])|\|", re.ASCII)
_CANDIDATE = re.compile("[" + re.escape(_LESS_THAN) + "]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _skeleton(text: str) -> str:
    """What `text` spells once invisible characters, whitespace, case, compatibility forms and
    look-alike letters are set aside."""
    out = []
    for ch in unicodedata.normalize("NFKC", text):
        if ch.isspace():
            ch = " "  # kept, so that "<sample id=…" still ends the name at "sample"
        elif unicodedata.category(ch) in ("Cf", "Cc", "Mn", "Me"):
            continue  # zero-width, bidi, soft hyphen, controls, combining marks
        if ch in _SLASHES:
            ch = "/"
        out.append(ch)
    return "".join(out).casefold().translate(_LOOKALIKES)


def untrusted(text: object, *, attribute: bool = False) -> str:
    """`text` (any value; str() is taken) made safe for a prompt: no "<" in it can start a delimiter tag
    of a data block or a chat template token (see the module docstring), and no NUL or other C0/C1 control
    character except tab and newline survives. With `attribute=True` (a value inside `id="…"`), `"`, "<"
    and ">" are HTML-escaped and line breaks become spaces, so the value cannot leave the attribute.
    Never raises; idempotent on its own output."""
    text = "" if text is None else str(text)
    text = _CONTROLS.sub("", text)
    if attribute:
        text = " ".join(text.split())
    out: list[str] = []
    start = 0
    for match in _CANDIDATE.finditer(text):
        i = match.start()
        if _TAG.match(_skeleton(text[i + 1 : i + 1 + _SKELETON_SPAN])):
            out.append(text[start:i])
            out.append("&lt;")
            start = i + 1
    out.append(text[start:])
    text = "".join(out)
    if attribute:  # "&" is left alone, so that the `&lt;` above stays readable and the result idempotent
        text = text.replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    return text


__all__ = ["DELIMITERS", "untrusted"]
