"""Untrusted text (sample text, ids, explanations, excerpts, gap labels, file names) made safe to put
inside a prompt's data block: one function, `untrusted`, used by every prompt builder.

A data block is delimited by tags such as `<sample>` … `</sample>`. Text from the dataset must not be able
to close (or open) such a block, whatever way it spells the tag: `</sample>`, `< /sample>`, `<\\n/sample>`,
the fullwidth `＜/sample＞`, letters from other scripts that look Latin (Cyrillic `ѕ`, `а`, `е`…), zero-width
or other invisible characters inside the tag — any number of them — or a backslash for the slash.

Nor may it write a chat template's special tokens or turn markers. A local server (llama.cpp, Ollama, vLLM
with a Hugging Face tokenizer) renders the chat template to a string and tokenizes it with special tokens
parsed, so `<|im_end|>` in a sample becomes a real end of turn. Each model family spells them its own way:
`<|…|>` (ChatML, Llama 3, Phi, DeepSeek's fullwidth bars), `<start_of_turn>` / `<end_of_turn>` (Gemma),
`<s>` / `</s>` (Llama 2, Mistral), `<<SYS>>` and `[INST]` (Llama 2's template text), `[INST]`,
`[TOOL_RESULTS]`, `[SYSTEM_PROMPT]`… (Mistral's control tokens), `<tool_call>` / `<tool_response>`
(Qwen, Hermes), `<think>` (reasoning models).

How: every character that reads as "<" or "[" (ASCII, fullwidth, small, and the usual look-alikes) is
looked at together with what follows it, as a *skeleton*: Unicode NFKC, lower case, invisible characters
(category Cf, e.g. U+200B) and combining marks dropped, runs of white space made one space, look-alike
letters mapped to Latin (a targeted table of the Cyrillic and Greek letters that look like the Latin letters
of the names; Unicode's full confusables table, UTS #39, is far larger than these names need). When the
skeleton after a "<" starts with an optional slash and one of the delimiter names, or with `|`, or spells one
of the special tokens above, the "<" becomes `&lt;`; a "[" that starts one of the bracket tokens becomes
`&#91;`. The model still reads a less-than sign or a bracket, but no tag and no token. Everything else is
kept as written (code with `a < b`, `<div>`, `#include <sys/types.h>`, `x[i]` and non-Latin text are not
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

# Special tokens and turn markers of chat templates spelled `<name>` (see the module docstring). Unlike a
# delimiter, one needs its ">" right after the name: `<s>` is a token, `<sys/types.h>` and `<think about>`
# are text.
SPECIAL_TOKENS = (
    "s", "bos", "eos", "pad", "unk", "mask", "sep", "cls", "start_of_turn", "end_of_turn", "start_of_image",
    "end_of_image", "tool_call", "tool_calls", "tool_response", "think", "thinking", "sys", "fim_prefix",
    "fim_middle", "fim_suffix",
)
# Mistral's control tokens (tekken and v3 tokenizers), spelled `[NAME]`; `[INST]` is Llama 2's template text too.
BRACKET_TOKENS = (
    "inst", "available_tools", "tool_results", "tool_calls", "tool_content", "system_prompt", "think",
    "img_break", "img_end", "call_id",
)  # not [IMG], [PREFIX], [ARGS]…: BBCode and usage lines (`cmd [args]`) spell them in ordinary text

# Characters that read as "<": NFKC folds the fullwidth and small forms; the others are look-alikes.
_LESS_THAN = "<\uff1c\ufe64\u2039\u2329\u27e8\u3008\u02c2\u1438\u276e\u276c\u29fc\u00ab\u300a\u2264\u226a"
# Characters that read as "[" (NFKC folds the fullwidth and small forms) and their look-alikes.
_BRACKET = "[\uff3b\ufe5d\u27e6\u3010\u3016\u301a\u2045"
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
_SKELETON_SPAN = 32  # skeleton characters read after a "<" or "[" at most
_ENOUGH = 24  # skeleton characters that decide every match: "/ available_tools ]" is 19, with room to spare
_NAME = "(?:" + "|".join(sorted(DELIMITERS, key=len, reverse=True)) + ")"
_TAG = re.compile(
    r" ?(?:/ ?)?" + _NAME + r"(?![a-z0-9_])|\||"
    r" ?(?:/ ?)?(?:" + "|".join(SPECIAL_TOKENS) + r") ?>",
    re.ASCII,
)
_BRACKET_TAG = re.compile(r" ?(?:/ ?)?(?:" + "|".join(BRACKET_TOKENS) + r") ?\]", re.ASCII)
_CANDIDATE = re.compile("[" + re.escape(_LESS_THAN + _BRACKET) + "]")
_BRACKETS = frozenset(_BRACKET)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Once the skeleton holds a character outside these, no name can follow any more: stop reading.
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz_/| ")
_SPACES = re.compile(r"\s+")


def _skeleton(text: str, start: int) -> str:
    """What `text[start:]` spells once invisible characters, combining marks, runs of white space, case,
    compatibility forms and look-alike letters are set aside: at most _SKELETON_SPAN characters, and no more
    than one past the last character a tag or token name can hold. However many invisible characters or
    spaces an attacker puts in a tag, they are read past; a run of "<<<<" costs one character each."""
    window = text[start : start + _SKELETON_SPAN]
    if window.isascii():  # the usual case, at C speed: nothing to drop or fold but case and white space
        skeleton = _SPACES.sub(" ", window.lower()).replace("\\", "/")
        if len(skeleton) >= _ENOUGH or start + _SKELETON_SPAN >= len(text):  # else spaces ran past it
            return skeleton
    out: list[str] = []
    for i in range(start, len(text)):
        for c in unicodedata.normalize("NFKC", text[i]).casefold():
            if c.isspace():
                if out and out[-1] == " ":
                    continue
                c = " "  # kept, so that "<sample id=…" still ends the name at "sample"
            elif unicodedata.category(c) in ("Cf", "Cc", "Mn", "Me"):
                continue  # zero-width, bidi, soft hyphen, controls, combining marks
            elif c in _SLASHES:
                c = "/"
            c = c.translate(_LOOKALIKES)
            out.append(c)
            if len(out) >= _SKELETON_SPAN or c not in _NAME_CHARS:
                return "".join(out)
    return "".join(out)


def untrusted(text: object, *, attribute: bool = False) -> str:
    """`text` (any value; str() is taken) made safe for a prompt: no "<" in it can start a delimiter tag
    of a data block or a chat template token, no "[" a bracket control token (see the module docstring),
    and no NUL or other C0/C1 control character except tab and newline survives. With `attribute=True`
    (a value inside `id="…"`), `"`, "<" and ">" are HTML-escaped and line breaks become spaces, so the value
    cannot leave the attribute. Never raises; idempotent on its own output; linear in the text's length."""
    text = "" if text is None else str(text)
    text = _CONTROLS.sub("", text)
    if attribute:
        text = " ".join(text.split())
    out: list[str] = []
    start = 0
    for match in _CANDIDATE.finditer(text):
        i = match.start()
        bracket = text[i] in _BRACKETS
        if (_BRACKET_TAG if bracket else _TAG).match(_skeleton(text, i + 1)):
            out.append(text[start:i])
            out.append("&#91;" if bracket else "&lt;")
            start = i + 1
    out.append(text[start:])
    text = "".join(out)
    if attribute:  # "&" is left alone, so that the `&lt;` above stays readable and the result idempotent
        text = text.replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    return text


__all__ = ["BRACKET_TOKENS", "DELIMITERS", "SPECIAL_TOKENS", "untrusted"]
