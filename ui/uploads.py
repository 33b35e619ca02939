"""What a message or an upload in the chat app names: a safe name for an uploaded file, a file path typed as
the message, the goal in "My goal: …", and the Markdown summary of an ingest. Pure functions, used by
ui/webchat.py (and importable from there).
"""

from __future__ import annotations

import re
from pathlib import Path

DATASET_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".gz", ".zst")


def safe_file_name(name: str) -> str:
    """An uploaded file's name as a safe name in the uploads folder (never a path): letters of any script,
    digits, `.`, `_` and `-` are kept, so `训练数据.jsonl` stays itself and keeps its extension."""
    base = Path(name.replace("\\", "/")).name
    cleaned = re.sub(r"[^\w.-]+", "_", base).rstrip("._ ")
    head, dot, rest = cleaned.partition(".")
    if not head.strip("_-"):  # no name before the extension (".jsonl", "_.jsonl"), or none at all
        cleaned = "dataset" + (dot + rest if dot else "")
    return cleaned[-120:]


def goal_words(text: str) -> str:
    """The goal in a message like "My goal: …" (what the "Propose subgoals" button offers to split)."""
    return re.sub(r"^\s*(my\s+)?goal(\s+is)?\s*[:\-–]?\s*", "", text, flags=re.IGNORECASE).strip() or text.strip()


def typed_path(text: str) -> Path | None:
    """A file path typed as the whole message ("ingest" before it is allowed), if it names a file."""
    candidate = re.sub(r"^(ingest|upload|load)\s+", "", text.strip(), flags=re.IGNORECASE).strip().strip("'\"`")
    if not candidate or "\n" in candidate:
        return None
    path = Path(candidate).expanduser()
    if path.suffix.lower() in DATASET_SUFFIXES and path.is_file():
        return path
    return None


def ingest_message(result, name: str) -> str:
    """The Markdown summary of an ingest of file `name`: samples, format, new/changed/unchanged, rejected ones."""
    lines = [f"**{name}**: {result.samples} samples ({result.format}, {result.file_type}) — {result.new} new, "
             f"{result.changed} changed, {result.unchanged} unchanged."]
    if result.invalid:
        lines.append(f"{result.invalid} invalid records were skipped (see {result.rejected_report}).")
    if result.exact_duplicates:
        lines.append(f"{result.exact_duplicates} exact duplicates.")
    lines += [f"{w}" for w in result.warnings[:5]]
    lines.append(f"Lengths: median {result.chars.median:.0f} characters (max {result.chars.max:,}), about "
                 f"{result.est_tokens.median:.0f} tokens. **Now tell me your goal**: what should a model trained on this data learn?")
    return "\n\n".join(lines)
