"""Issue 27 F10: an export, its manifest or a report never lands on an input (the dataset's own file, a
pool file, the workspace's database) and never writes through a symlink, also from the app's confined
export folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from goalcover.tools.core.errors import BadInput
from goalcover.tools.core.files import write_atomic
from goalcover.tools.core.workspace import Workspace
from goalcover.tools.data.export import export
from goalcover.tools.data.exports_folder import export_to_workspace
from goalcover.tools.data.ingest import ingest_file
from goalcover.ui.cli import app
from tests.conftest import SFT, head_lines


@pytest.fixture
def small(tmp_path) -> Path:
    """Eight contract samples as JSONL."""
    return head_lines(SFT / "contracts_alpaca.jsonl", tmp_path / "data.jsonl", 8)


def test_the_manifest_never_overwrites_an_input_named_like_it(tmp_path, small):
    records = [json.loads(line) for line in small.read_text().splitlines()]
    source = tmp_path / "clean.manifest.json"  # a JSON array whose name is the manifest of an export to clean.json
    source.write_text(json.dumps(records), encoding="utf-8")
    before = source.read_bytes()
    with Workspace.open(tmp_path / "ws") as ws:
        ingest_file(ws, source)
        with pytest.raises(BadInput, match=r"clean\.manifest\.json.*input.*manifest"):
            export(ws, tmp_path / "clean.json")
    assert source.read_bytes() == before
    assert not (tmp_path / "clean.json").exists()  # refused before anything was written


def test_an_export_never_overwrites_a_pool_file_or_the_workspace_database(tmp_path, small):
    pool_file = head_lines(SFT / "contracts_alpaca.jsonl", tmp_path / "more.jsonl", 12)
    before = pool_file.read_bytes()
    with Workspace.open(tmp_path / "ws") as ws:
        ingest_file(ws, small)
        from goalcover.tools.fill.pool import add_to_pool

        add_to_pool(ws, pool_file)
        with pytest.raises(BadInput, match="more.jsonl.*input"):
            export(ws, pool_file)
        hard = tmp_path / "other" / "data.jsonl"  # the dataset under another name (a hard link)
        hard.parent.mkdir()
        os.link(small, hard)
        with pytest.raises(BadInput, match="input"):
            export(ws, hard)
        with pytest.raises(BadInput, match="input"):  # a JSONL name inside the index folder
            export(ws, ws.root / "chroma" / "x.jsonl")
    assert pool_file.read_bytes() == before


@pytest.mark.parametrize("which", ["export", "manifest"])
def test_an_export_never_writes_through_a_symlink(tmp_path, small, which):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / ("clean.jsonl" if which == "export" else "clean.manifest.json")).symlink_to(victim)
    with Workspace.open(tmp_path / "ws") as ws:
        ingest_file(ws, small)
        with pytest.raises(BadInput, match="symbolic link"):
            export(ws, out / "clean.jsonl")
    assert victim.read_text() == "precious\n"


def test_the_confined_export_does_not_leave_its_folder_through_a_symlink(tmp_path, small):
    outside = tmp_path / "outside.json"
    outside.write_text("{}\n")
    with Workspace.open(tmp_path / "ws") as ws:
        ingest_file(ws, small)
        (ws.exports_dir / "mine.manifest.json").symlink_to(outside)  # planted at the manifest's name
        (ws.exports_dir / "link.jsonl").symlink_to(tmp_path / "elsewhere.jsonl")
        with pytest.raises(BadInput, match="symbolic link"):
            export_to_workspace(ws, "mine.jsonl")
        with pytest.raises(BadInput):
            export_to_workspace(ws, "link.jsonl")
        assert export_to_workspace(ws, "fine.jsonl").written == 8
    assert outside.read_text() == "{}\n" and not (tmp_path / "elsewhere.jsonl").exists()


def test_report_output_over_the_dataset_is_refused(tmp_path, small):
    before = small.read_bytes()
    ws = str(tmp_path / "ws")
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(small), "-w", ws]).exit_code == 0
    goal = Path(__file__).resolve().parents[3] / "evals" / "goals" / "contracts.yaml"
    assert runner.invoke(app, ["goal", "--file", str(goal), "-w", ws]).exit_code == 0
    fine = runner.invoke(app, ["report", "-o", str(tmp_path / "report.md"), "-w", ws])
    assert fine.exit_code == 0 and (tmp_path / "report.md").is_file(), fine.output
    result = runner.invoke(app, ["report", "-o", str(small), "-w", ws])
    assert result.exit_code == 2, result.output
    assert "data.jsonl" in result.output and "input" in result.output and "Traceback" not in result.output
    assert small.read_bytes() == before
    result = runner.invoke(app, ["report", "-o", str(tmp_path / "ws" / "goalcover.sqlite"), "-w", ws])
    assert result.exit_code == 2 and "input" in result.output


def test_write_atomic_refuses_a_symlink_at_the_final_name(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "report.md").symlink_to(victim)
    with pytest.raises(BadInput, match="symbolic link"):
        write_atomic(tmp_path / "report.md", "# report\n")
    assert victim.read_text() == "precious\n" and (tmp_path / "report.md").is_symlink()
    assert write_atomic(tmp_path / "sub" / "new.md", "x") == (tmp_path / "sub" / "new.md").resolve()
