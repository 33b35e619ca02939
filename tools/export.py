"""Export: the filtered and augmented dataset in the user's own shape and file type, with a manifest.

Untouched records come out exactly as they came in (JSONL lines byte for byte, other types record for
record). Files are written atomically, never over an input file, and `manifest.json` beside the export
says what was dropped and why, where each synthetic sample came from, and the coverage before and after.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from goalcover import __version__
from goalcover.tools.coverage import coverage
from goalcover.tools.errors import BadInput
from goalcover.tools.files import write_atomic
from goalcover.tools.goal import current_goal
from goalcover.tools.ingest import file_type_of
from goalcover.tools.models import Sample
from goalcover.tools.synthesis import list_synthetic
from goalcover.tools.workspace import Workspace


class ExportResult(BaseModel):
    """`goalcover export --json`; the first four keys are fixed by the design."""

    path: str
    written: int
    dropped: int
    synthetic: int
    manifest: str


def _jsonl(samples: list[Sample], synthetic: list[dict]) -> bytes:
    lines = [s.raw if s.raw is not None else json.dumps(s.record, ensure_ascii=False) for s in samples]
    lines += [json.dumps(r, ensure_ascii=False) for r in synthetic]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _json(samples: list[Sample], synthetic: list[dict]) -> bytes:
    return (json.dumps([s.record for s in samples] + synthetic, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _csv(samples: list[Sample], synthetic: list[dict], header: list[str]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=header, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in [s.record for s in samples] + synthetic:
        writer.writerow({k: _cell(record.get(k)) for k in header})
    return buffer.getvalue().encode("utf-8")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _parquet(samples: list[Sample], synthetic: list[dict], source: Path) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(source) if source.exists() else None
    table = pa.Table.from_pylist([s.record for s in samples] + synthetic, schema=schema)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def _header(samples: list[Sample], synthetic: list[dict]) -> list[str]:
    header: list[str] = []
    for record in [s.record for s in samples] + synthetic:
        header += [k for k in record if k not in header]
    return header


def export(
    ws: Workspace,
    output: Path,
    *,
    drop_off_goal: bool = False,
    with_synthetic: bool = False,
    allowed_root: Path | None = None,
) -> ExportResult:
    """Write the dataset; `allowed_root`, when given, confines the output to that folder (the agent's export)."""
    output = output.expanduser().resolve()
    if allowed_root is not None and not output.is_relative_to(allowed_root.resolve()):
        raise BadInput(f"{output}: exports go inside {allowed_root.resolve()}; refusing a path outside it")
    sources = ws.store.sources()
    if not sources:
        raise BadInput(f"the workspace {ws.root} holds no samples yet; run `goalcover ingest FILE` first")
    inputs = {Path(s["path"]).resolve() for s in sources}
    if output in inputs:
        raise BadInput(f"{output}: is an input file of this workspace; refusing to overwrite it")
    file_type = sources[0]["file_type"]
    try:
        wanted = file_type_of(output)
    except BadInput:
        wanted = None
    if wanted != file_type:
        raise BadInput(f"{output}: the dataset is {file_type}; name the export with a .{file_type} extension")

    samples = ws.store.samples()
    dropped: list[dict] = []
    report = coverage(ws) if (drop_off_goal or current_goal(ws, required=False)) and ws.store.get_meta("judge") else None
    if drop_off_goal:
        if report is None:
            raise BadInput("--drop-off-goal needs scores: run `goalcover score` first")
        off = set(report.off_goal_ids)
        max_allowed = report.thresholds["off_goal_max"]
        dropped = [{"id": s.id, "reason": f"off-goal: no subgoal scored above {max_allowed}"} for s in samples if s.id in off]
        samples = [s for s in samples if s.id not in off]
    synthetic = list_synthetic(ws, state="accepted") if with_synthetic else []
    records = [s.record for s in synthetic]

    if file_type == "jsonl":
        data = _jsonl(samples, records)
    elif file_type == "json":
        data = _json(samples, records)
    elif file_type == "csv":
        data = _csv(samples, records, _header(samples, records))
    else:
        data = _parquet(samples, records, Path(sources[0]["path"]))
    write_atomic(output, data)

    goal = current_goal(ws, required=False)
    manifest = {
        "goalcover_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "export": str(output),
        "file_type": file_type,
        "shape": sources[0]["shape"],
        "sources": [s["path"] for s in sources],
        "counts": {"input": len(samples) + len(dropped), "written": len(samples) + len(records), "dropped": len(dropped), "synthetic": len(records)},
        "dropped": dropped,
        "synthetic": [
            {k: getattr(s, k) for k in ("id", "gap_id", "subgoal_id", "model", "prompt_version", "judge_score")} for s in synthetic
        ],
        "goal": goal.model_dump() if goal else None,
        "coverage_before": [r.model_dump() for r in report.subgoals] if report else None,
        "coverage_after": [r.model_dump() for r in report.after] if report and report.after and with_synthetic else None,
        "judge": report.judge if report else None,
    }
    manifest_path = write_atomic(output.parent / "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    return ExportResult(
        path=str(output), written=len(samples) + len(records), dropped=len(dropped), synthetic=len(records), manifest=str(manifest_path)
    )
