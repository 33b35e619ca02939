"""The data shapes that cross module boundaries. Plain pydantic models, no behaviour beyond views."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from goalcover.tools.core.errors import BadInput

Shape = Literal["alpaca", "messages", "sharegpt", "prompt-completion", "text"]
SHAPES: tuple[Shape, ...] = ("alpaca", "messages", "sharegpt", "prompt-completion", "text")
FileType = Literal["jsonl", "json", "csv", "parquet", "arrow"]


def content_hash(text: str) -> str:
    """The hex SHA-256 of `text` (UTF-8): the key judgments are cached by."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Sample(BaseModel):
    """One training example: a stable id, the record exactly as read, and a text view for judging."""

    id: str
    format: Shape
    source: str = Field(description="absolute path of the file it came from")
    line: int = Field(description="1-based line (JSONL, CSV) or record number (JSON, Parquet)")
    record: dict[str, Any] = Field(description="the original record, untouched, for lossless export")
    raw: str | None = Field(
        None,
        description="the record's original text so export can write it back unchanged: the JSONL line, the JSON "
        "array element, or a CSV row's cells as a JSON list",
    )
    part: str | None = Field(None, description="the shard it came from, relative to a folder source")
    text: str = Field(description="the view used for embedding and judging")

    @property
    def content_hash(self) -> str:
        """The hash of the sample's text view (exact duplicates share it, and one judgment)."""
        return content_hash(self.text)


class Anchor(BaseModel):
    """A scored example the user gave for one subgoal (from their spot-checks): the start of the sample,
    their 1-5 score, and the sample's content hash (so agreement leaves it out)."""

    excerpt: str = Field(min_length=1)
    score: int = Field(ge=1, le=5)
    sample_hash: str = ""


class Subgoal(BaseModel):
    """One checkable part of the goal: id S1.., title, description and the evidence a supporting sample shows;
    `hash` changes when any of them does."""

    id: str = Field(pattern=r"^S\d+$", description='"S1", "S2", …')
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    evidence: str = Field("", description="what a supporting sample shows")
    anchors: list[Anchor] = Field([], description="the user's scored examples for this subgoal (`goalcover calibrate --apply`)")

    @property
    def hash(self) -> str:
        """Changes when the meaning changes — anchors included — so editing a subgoal (or giving it the
        user's scored examples) re-scores only that subgoal. Without anchors, the hash is what it always was."""
        parts: list[Any] = [self.title, self.description, self.evidence]
        if self.anchors:
            parts.append([[a.excerpt, a.score] for a in self.anchors])
        return content_hash(json.dumps(parts))


class Goal(BaseModel):
    """The user's goal in words and its subgoals."""

    text: str = Field(min_length=1)
    subgoals: list[Subgoal] = Field(min_length=1)

    def subgoal(self, subgoal_id: str) -> Subgoal:
        """The subgoal `subgoal_id` (case-insensitive); raises BadInput naming the ids there are."""
        for s in self.subgoals:
            if s.id == subgoal_id.upper():
                return s
        known = ", ".join(s.id for s in self.subgoals)
        raise BadInput(f"No subgoal {subgoal_id!r}; the goal has {known}")


class LengthStats(BaseModel):
    """Length statistics of the samples (characters or estimated tokens): min, mean, median, p95, max."""

    min: int
    mean: float
    median: float
    p95: float
    max: int


class IngestResult(BaseModel):
    """What `goalcover ingest --json` prints. The first five keys are fixed by the design."""

    samples: int
    format: Shape
    invalid: int
    new: int
    unchanged: int
    changed: int = 0
    removed: int = 0
    embedded: int = 0
    file: str
    file_type: FileType
    exact_duplicates: int = Field(0, description="samples whose text equals an earlier sample's")
    chars: LengthStats | None = None
    est_tokens: LengthStats | None = None
    warnings: list[str] = []
    rejected_report: str | None = None
