"""Export: the filtered and augmented dataset in the user's own shape and file type, with a manifest.

Untouched records come out exactly as they came in: JSONL byte for byte (BOM, line ends and all), JSON
array elements and CSV rows as written, Parquet under its own schema, in the same container (gzip/zstd,
a folder of shards, a save_to_disk folder). Files are written atomically, never over an input file, and
`<name>.manifest.json` beside each export says what was dropped and why, where each synthetic sample came
from, and the coverage before and after.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from goalcover import __version__
from goalcover.tools.measure.coverage import coverage
from goalcover.tools.core.errors import BadInput
from goalcover.tools.core.files import forget_temp, make_temp_dir, open_temp, ordinary_mode, output_path, write_atomic
from goalcover.tools.core.goal import current_goal
from goalcover.tools.core.shapes import Sample
from goalcover.tools.data.readers import COMPRESSIONS, FILE_TYPES, SourceLayout
from goalcover.tools.fill.synthesis import list_synthetic
from goalcover.tools.data.values import to_storable
from goalcover.tools.core.workspace import Workspace
from goalcover.tools.core.lock import writes
from goalcover.tools.data.output_guard import check_output


class ExportResult(BaseModel):
    """`goalcover export --json`; the first four keys are fixed by the design."""

    path: str
    written: int
    dropped: int
    synthetic: int
    manifest: str


def _text(sample: Sample) -> str:
    """A sample's original text (JSONL line, JSON array element), or its record as JSON."""
    return sample.raw if sample.raw is not None else json.dumps(to_storable(sample.record), ensure_ascii=False)


class _Sink:
    """Where an export's bytes go: a temporary file beside the target (compressed as the source was),
    renamed into place by `publish`, so readers never see half a file and a failure leaves nothing."""

    def __init__(self, target: Path, compression: str | None) -> None:
        self.target = target
        fd, self.tmp = open_temp(target)  # pid in its name: a killed export's leftover is swept by the next
        self.raw = os.fdopen(fd, "wb")
        if compression == "gzip":
            self.out: Any = gzip.GzipFile(fileobj=self.raw, mode="wb", mtime=0, filename="")
        elif compression == "zstd":
            import zstandard

            self.out = zstandard.ZstdCompressor().stream_writer(self.raw, closefd=False)
        else:
            self.out = self.raw

    def write(self, data: str | bytes) -> None:
        """Write text (as UTF-8) or bytes."""
        self.out.write(data.encode("utf-8") if isinstance(data, str) else data)

    def publish(self) -> None:
        """Finish the stream, fsync, give ordinary permissions and rename over the target."""
        if self.out is not self.raw:
            self.out.close()
        self.raw.flush()
        os.fsync(self.raw.fileno())
        self.raw.close()
        os.chmod(self.tmp, ordinary_mode())
        os.replace(self.tmp, self.target)
        forget_temp(self.tmp)

    def discard(self) -> None:
        """Drop the temporary file (the export failed)."""
        if not self.raw.closed:
            self.raw.close()
        self.tmp.unlink(missing_ok=True)
        forget_temp(self.tmp)


def _write_lines(sink: _Sink, samples: Iterable[Sample], synthetic: list[dict], layout: SourceLayout) -> int:
    """JSON Lines as the source wrote them: its BOM, its line ends, its final newline; untouched lines
    byte for byte (the raw line as read). Returns the number of records written."""
    if layout.bom:
        sink.write("\ufeff")
    count = 0
    for text in itertools.chain((_text(s) for s in samples), (json.dumps(r, ensure_ascii=False) for r in synthetic)):
        if count:
            sink.write(layout.newline)
        sink.write(text)
        count += 1
    if count and (layout.final_newline or synthetic):
        sink.write(layout.newline)
    return count


def _write_json(sink: _Sink, samples: Iterable[Sample], synthetic: list[dict], layout: SourceLayout) -> int:
    """A JSON array whose untouched elements are their original text (numbers and key order as written)."""
    if layout.bom:
        sink.write("\ufeff")
    sink.write("[")
    count = 0
    for text in itertools.chain((_text(s) for s in samples), (json.dumps(r, ensure_ascii=False) for r in synthetic)):
        sink.write(("," if count else "") + "\n" + text)
        count += 1
    sink.write("\n]\n" if count else "]\n")
    return count


def _write_csv(sink: _Sink, samples: Iterable[Sample], synthetic: list[dict], layout: SourceLayout) -> int:
    """CSV in the source's dialect (delimiter, line ends, BOM) under its verbatim header; untouched rows
    keep every cell, unnamed columns included; synthetic rows fill the named columns."""
    header = layout.csv_header or _header(synthetic)
    names = [h.strip() for h in header]
    buffer = io.StringIO(newline="")
    if layout.csv_quoting == "none":  # TSV: cells written literally (a tab or line break in a new cell becomes \t, \n)
        writer: Any = _TsvWriter(buffer, layout.newline)
    else:
        writer = csv.writer(buffer, delimiter=layout.csv_delimiter or ",", lineterminator=layout.newline)

    def flush() -> None:
        sink.write(buffer.getvalue())
        buffer.seek(0)
        buffer.truncate()

    if layout.bom:
        sink.write("\ufeff")
    writer.writerow(header)
    count = 0
    for sample in samples:
        if sample.raw is not None and layout.csv_header is not None:
            writer.writerow(json.loads(sample.raw))
        else:
            writer.writerow([_cell(sample.record.get(n)) if n else "" for n in names])
        count += 1
        if count % 1000 == 0:
            flush()
    for record in synthetic:
        writer.writerow([_cell(record.get(n)) if n else "" for n in names])
        count += 1
    flush()
    return count


class _TsvWriter:
    """Rows of a TSV file whose quotes mean nothing: cells joined by tabs as they are. A cell read from
    such a file holds no tab or line break; one in a new (synthetic) cell is written as the escapes `\\t`,
    `\\n`, `\\r` (the linear-TSV convention), so no row is split."""

    ESCAPES = str.maketrans({"\t": "\\t", "\n": "\\n", "\r": "\\r"})

    def __init__(self, out: io.StringIO, newline: str) -> None:
        self.out, self.newline = out, newline

    def writerow(self, cells: list[str]) -> None:
        """Write one row."""
        self.out.write("\t".join(str(c).translate(self.ESCAPES) for c in cells) + self.newline)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _arrow_table(records: list[dict], layout: SourceLayout):
    import pyarrow as pa

    try:
        return pa.Table.from_pylist(records, schema=layout.schema())
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise BadInput(f"the records do not fit the source's columns ({exc}); export synthetic samples to JSONL instead") from None


def _write_parquet(sink: _Sink, samples: Iterable[Sample], synthetic: list[dict], layout: SourceLayout) -> int:
    """Parquet under the source's own Arrow schema, in row groups of 10,000, so bytes, timestamps,
    decimals and structs come back as the types they were."""
    import pyarrow.parquet as pq

    writer = None
    count = 0
    records = itertools.chain((s.record for s in samples), synthetic)
    while batch := list(itertools.islice(records, 10_000)):
        table = _arrow_table(batch, layout)
        writer = writer or pq.ParquetWriter(sink.out, table.schema)
        writer.write_table(table)
        count += len(batch)
    if writer is None:
        writer = pq.ParquetWriter(sink.out, layout.schema() or _arrow_table([], layout).schema)
    writer.close()
    return count


WRITERS = {"jsonl": _write_lines, "json": _write_json, "csv": _write_csv, "parquet": _write_parquet}


def _header(records: list[dict]) -> list[str]:
    header: list[str] = []
    for record in records:
        header += [k for k in record if k not in header]
    return header


def _write_file(target: Path, file_type: str, samples: Iterable[Sample], synthetic: list[dict], layout: SourceLayout) -> int:
    sink = _Sink(target, layout.compression)
    try:
        count = WRITERS[file_type](sink, samples, synthetic, layout)
        sink.publish()
    except BaseException:
        sink.discard()
        raise
    return count


def _expected_names(source: Path, file_type: str, layout: SourceLayout) -> list[str]:
    """The endings an export of this source may have: its own, or the file type's usual one."""
    if layout.container != "file":
        return []
    own = "".join(source.suffixes[-2:]) if layout.compression else source.suffix
    usual = {"jsonl": ".jsonl", "json": ".json", "csv": ".csv", "parquet": ".parquet"}[file_type]
    usual += {"gzip": ".gz", "zstd": ".zst"}.get(layout.compression or "", "")
    return list(dict.fromkeys([own.lower(), usual]))


def _write_folder(output: Path, file_type: str, samples: Iterable[Sample], synthetic: list[dict], layout: SourceLayout) -> None:
    """A folder of shards like the source's: each kept sample back in its own shard (samples arrive in
    file order, so each shard's run is contiguous); synthetic samples in one more shard. Built beside the
    target and renamed into place."""
    staging = _folder_staging(output)
    try:
        first = layout.shards[0]
        for part, kept in itertools.groupby(samples, key=lambda s: s.part or first):
            _write_file(staging / part, file_type, kept, [], layout)
        for part in layout.shards:  # shards whose every sample was dropped stay, empty
            if not (staging / part).exists():
                _write_file(staging / part, file_type, [], [], layout)
        if synthetic:
            head = Path(first)
            name = head.name[: len(head.name) - len("".join(head.suffixes))] + "-synthetic" + "".join(head.suffixes)
            _write_file(staging / head.parent / name, file_type, [], synthetic, layout)
        _publish(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        forget_temp(staging)


def _write_hf(output: Path, samples: Iterable[Sample], synthetic: list[dict], layout: SourceLayout) -> None:
    """A Hugging Face `save_to_disk` folder (needs the `datasets` package: goalcover[hf]); built in memory."""
    try:
        from datasets import Dataset
    except ImportError:
        raise BadInput("exporting a Hugging Face save_to_disk folder needs the datasets package: pip install 'goalcover[hf]'") from None
    staging = _folder_staging(output)
    try:
        Dataset(_arrow_table([s.record for s in samples] + synthetic, layout)).save_to_disk(str(staging / "data"))
        _publish(staging / "data", output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        forget_temp(staging)


def _folder_staging(output: Path) -> Path:
    """A fresh temporary folder beside `output`, where a folder export is built before it is renamed."""
    if output.is_file() or (output.is_dir() and any(output.iterdir())):
        raise BadInput(f"{output}: exists; exports of folder datasets go to a new (or empty) folder")
    return make_temp_dir(output)


def _publish(folder: Path, output: Path) -> None:
    if output.exists():
        output.rmdir()  # checked empty above
    os.replace(folder, output)
    for path in [output, *output.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def manifest_path_for(output: Path) -> Path:
    """`clean.jsonl` -> `clean.manifest.json` beside it (each export its own manifest); a folder export's
    manifest sits beside the folder."""
    base = output.name
    for suffix in reversed(output.suffixes[-2:]):
        base = base.removesuffix(suffix) if suffix.lower() in (*FILE_TYPES, *COMPRESSIONS) else base
    return output.with_name(f"{base or output.name}.manifest.json")


@writes("export")
def export(
    ws: Workspace,
    output: Path,
    *,
    drop_off_goal: bool = False,
    with_synthetic: bool = False,
    allowed_root: Path | None = None,
) -> ExportResult:
    """Write the dataset; `allowed_root`, when given, confines the output to that folder (the agent's export)."""
    output = output_path(output)  # the folder resolved, a symlink at the name refused, never followed
    if allowed_root is not None and not output.is_relative_to(allowed_root.resolve()):
        raise BadInput(f"{output}: exports go inside {allowed_root.resolve()}; refusing a path outside it")
    sources = ws.store.sources()
    if not sources:
        raise BadInput(f"the workspace {ws.root} holds no samples yet; run `goalcover ingest FILE` first")
    check_output(ws, output, "export")  # never over a source, a pool file or the workspace's own files
    manifest_target = check_output(ws, manifest_path_for(output), "manifest")
    file_type = sources[0]["file_type"]
    layout = SourceLayout.model_validate(sources[0].get("layout") or {})
    source_path = Path(sources[0]["path"])
    names = _expected_names(source_path, file_type, layout)
    if names and not output.name.lower().endswith(tuple(names)):
        raise BadInput(f"{output}: the dataset is {file_type}; name the export with {' or '.join(names)} at the end")
    if not names and output.suffix:
        raise BadInput(f"{output}: the dataset is a folder ({layout.container}); give a folder name for the export, not a file name")

    dropped: list[dict] = []
    report = coverage(ws) if (drop_off_goal or current_goal(ws, required=False)) and ws.store.get_meta("judge") else None
    off: set[str] = set()
    predicted_off: set[str] = set()
    if drop_off_goal:
        if report is None:
            raise BadInput("--drop-off-goal needs scores: run `goalcover score` first")
        off = set(report.off_goal_ids)
        # score --predict --min-precision: the cascade's off-goal decisions (judge or predictor) drop too.
        from goalcover.tools.measure.predict import off_goal_decisions

        decided = off_goal_decisions(ws)
        if decided:
            row = decided[1]
            predicted_off = decided[0] - off
            off |= predicted_off
    max_allowed = report.thresholds["off_goal_max"] if report else None
    synthetic = list_synthetic(ws, state="accepted") if with_synthetic else []
    records = [s.record for s in synthetic]
    kept = 0

    def kept_samples() -> Iterator[Sample]:
        # Streamed from the store in file order: an export never holds the whole dataset.
        nonlocal kept
        for sample in ws.store.iter_samples():
            if sample.id in predicted_off:
                dropped.append({"id": sample.id, "reason": f"off-goal as predicted from the embeddings (cascade's estimated "
                                f"precision {row.est_precision or 0:.0%}, recall {row.est_recall or 0:.0%})"})
                continue
            if sample.id in off:
                dropped.append({"id": sample.id, "reason": f"off-goal: no subgoal scored above {max_allowed}"})
                continue
            kept += 1
            yield sample

    if layout.container == "hf":
        _write_hf(output, kept_samples(), records, layout)
    elif layout.container == "folder":
        _write_folder(output, file_type, kept_samples(), records, layout)
    else:
        _write_file(output, file_type, kept_samples(), records, layout)

    goal = current_goal(ws, required=False)
    manifest = {
        "goalcover_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "export": str(output),
        "file_type": file_type,
        "shape": sources[0]["shape"],
        "sources": [s["path"] for s in sources],
        "counts": {"input": kept + len(dropped), "written": kept + len(records), "dropped": len(dropped), "synthetic": len(records)},
        "dropped": dropped,
        "synthetic": [
            {k: getattr(s, k) for k in ("id", "gap_id", "subgoal_id", "model", "prompt_version", "judge_score")} for s in synthetic
        ],
        "goal": goal.model_dump() if goal else None,
        "coverage_before": [r.model_dump() for r in report.subgoals] if report else None,
        "coverage_after": [r.model_dump() for r in report.after] if report and report.after and with_synthetic else None,
        "judge": (report.judge.to_stored() if report.judge else {}) if report else None,
    }
    manifest_path = write_atomic(manifest_target, json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    return ExportResult(
        path=str(output), written=kept + len(records), dropped=len(dropped), synthetic=len(records), manifest=str(manifest_path)
    )
