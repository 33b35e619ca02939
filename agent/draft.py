"""Structured edits of the draft subgoals: the user speaks plainly, the model writes these, we apply them.

The model never rewrites the list itself. It translates "merge 2 and 3", "S4 is too vague" or "drop the
last" into typed operations, and `apply_edits` carries them out exactly: ids refer to the list as it was
last shown (so "merge 2 and 3, drop 5" means the 5 the user saw), all operations succeed or none does, and
the result is renumbered S1..Sn with a note of where each old id went.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Union

from pydantic import BaseModel, BeforeValidator, Field

from goalcover.tools.core.errors import BadInput
from goalcover.tools.core.shapes import Subgoal


def _normalise_id(value):
    # Models write "3", "s3" or "S3" for the same subgoal; the draft only knows "S3".
    if isinstance(value, int):
        return f"S{value}"
    if isinstance(value, str) and re.fullmatch(r"\s*[Ss]?\d+\s*", value):
        return "S" + value.strip().lstrip("Ss")
    return value


SubgoalId = Annotated[str, BeforeValidator(_normalise_id), Field(pattern=r"^S\d+$", description='a subgoal id as shown, e.g. "S3"')]
Text = Annotated[str, Field(min_length=1)]


class NewSubgoal(BaseModel):
    """A subgoal the user adds or rewrites in plain words: title, description and (optionally) the evidence a
    judge looks for."""

    title: Text = Field(description="3 to 8 words")
    description: Text = Field(description="one sentence")
    evidence: str = Field("", description="what a training sample that supports it shows")


class Merge(BaseModel):
    """Join two or more subgoals into one, at the place of the first."""

    op: Literal["merge"]
    ids: list[SubgoalId] = Field(min_length=2)
    title: str | None = Field(None, description="title of the merged subgoal (default: the titles joined)")
    description: str | None = Field(None, description="description of the merged subgoal (default: joined)")
    evidence: str | None = None


class Split(BaseModel):
    """Replace one subgoal by two or more narrower ones."""

    op: Literal["split"]
    id: SubgoalId
    into: list[NewSubgoal] = Field(min_length=2)


class Edit(BaseModel):
    """Rewrite fields of one subgoal (e.g. make a vague description concrete and checkable)."""

    op: Literal["edit"]
    id: SubgoalId
    title: str | None = None
    description: str | None = None
    evidence: str | None = None


class Add(BaseModel):
    """Add a subgoal, at the end or after a given one."""

    op: Literal["add"]
    title: Text
    description: Text
    evidence: str = ""
    after: SubgoalId | None = Field(None, description="insert after this subgoal; default: at the end")


class Drop(BaseModel):
    """Remove one subgoal."""

    op: Literal["drop"]
    id: SubgoalId


class Rename(BaseModel):
    """Change only the title of one subgoal."""

    op: Literal["rename"]
    id: SubgoalId
    title: Text


EditOp = Annotated[Union[Merge, Split, Edit, Add, Drop, Rename], Field(discriminator="op")]


class _Item(BaseModel):
    origin: str | None  # the id it had in the list the user saw; None for new ones
    title: str
    description: str
    evidence: str = ""


def apply_edits(draft: list[Subgoal], edits: list[EditOp]) -> tuple[list[Subgoal], list[str]]:
    """The draft after `edits`, renumbered, and one line per change; BadInput (nothing applied) when an
    operation names an id that is not there or is already gone."""
    items = [_Item(origin=s.id, title=s.title, description=s.description, evidence=s.evidence) for s in draft]
    shown = [s.id for s in draft]
    gone: dict[str, str] = {}
    changes: list[str] = []

    def position(op_no: int, sid: str) -> int:
        if sid in gone:
            raise BadInput(f"edit {op_no}: {sid} is already {gone[sid]} by an earlier edit in this call")
        for n, item in enumerate(items):
            if item.origin == sid:
                return n
        raise BadInput(f"edit {op_no}: no subgoal {sid}; the draft has {', '.join(shown)}")

    for op_no, op in enumerate(edits, start=1):
        if isinstance(op, Merge):
            if len(set(op.ids)) != len(op.ids):
                raise BadInput(f"edit {op_no}: merge names the same subgoal twice ({', '.join(op.ids)})")
            merged = [items[position(op_no, sid)] for sid in op.ids]
            joined = _Item(
                origin=op.ids[0],
                title=op.title or " and ".join(m.title for m in merged),
                description=op.description or " ".join(m.description for m in merged),
                evidence=op.evidence if op.evidence is not None else "; ".join(m.evidence for m in merged if m.evidence),
            )
            items[position(op_no, op.ids[0])] = joined
            for sid in op.ids[1:]:
                items.pop(position(op_no, sid))
                gone[sid] = f"merged into {op.ids[0]}"
            changes.append(f"merged {' + '.join(op.ids)} into {joined.title!r}")
        elif isinstance(op, Split):
            at = position(op_no, op.id)
            items[at : at + 1] = [_Item(origin=None, **part.model_dump()) for part in op.into]
            gone[op.id] = "split"
            changes.append(f"split {op.id} into " + ", ".join(repr(p.title) for p in op.into))
        elif isinstance(op, Edit):
            fields = {k: v for k, v in (("title", op.title), ("description", op.description), ("evidence", op.evidence)) if v}
            if not fields:
                raise BadInput(f"edit {op_no}: edit of {op.id} changes nothing (give a title, description or evidence)")
            at = position(op_no, op.id)
            items[at] = items[at].model_copy(update=fields)
            changes.append(f"edited {op.id} ({', '.join(fields)})")
        elif isinstance(op, Add):
            at = position(op_no, op.after) + 1 if op.after else len(items)
            items.insert(at, _Item(origin=None, title=op.title, description=op.description, evidence=op.evidence))
            changes.append(f"added {op.title!r}")
        elif isinstance(op, Drop):
            items.pop(position(op_no, op.id))
            gone[op.id] = "dropped"
            changes.append(f"dropped {op.id}")
        elif isinstance(op, Rename):
            at = position(op_no, op.id)
            items[at] = items[at].model_copy(update={"title": op.title})
            changes.append(f"renamed {op.id} to {op.title!r}")
    if not items:
        raise BadInput("these edits would leave no subgoal; keep at least one")

    result = [Subgoal(id=f"S{n}", title=i.title, description=i.description, evidence=i.evidence) for n, i in enumerate(items, 1)]
    moved = [f"{i.origin}→S{n}" for n, i in enumerate(items, 1) if i.origin and i.origin != f"S{n}"]
    if moved:
        changes.append("renumbered: " + ", ".join(moved))
    return result, changes
