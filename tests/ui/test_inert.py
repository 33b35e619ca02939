"""Issue 27 F9: sample text, ids and file names reach the terminal inert — no OSC 52 clipboard write, no
screen clearing, no hidden text, no bidi reordering, no C1 controls — in tables, errors and `--json`."""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from goalcover.ui.cli import app
from goalcover.ui.inert import inert, inert_json

runner = CliRunner()
HOSTILE = ("clip\x1b]52;c;cm0gLXJmIH4=\x07 clear\x1b[2J\x1b[H hidden\x1b[8mSECRET\x1b[0m rtl\u202etxt.exe "
           "c1\x9b2J bell\x07 back\x08\x08 cr\roverwrite [red]markup[/red]")
# What a terminal acts on: ESC, BEL, BS, CR, C1 controls, bidi overrides and isolates.
ACTIVE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_inert_removes_whole_sequences_and_keeps_the_words():
    text = inert(HOSTILE, markup=False)
    assert not ACTIVE.search(text)
    assert "52;c" not in text and "[2J" not in text  # the sequence goes, not just its ESC
    for word in ("clip", "clear", "hidden", "SECRET", "rtl", "txt.exe", "bell", "overwrite", "[red]markup[/red]"):
        assert word in text
    assert inert("[red]x[/red]") == "\\[red]x\\[/red]" and inert("a\tb\nc") == "a\tb\nc"
    assert json.loads(inert_json({"t": HOSTILE}))["t"] == HOSTILE and not ACTIVE.search(inert_json({"t": HOSTILE}))


def test_search_info_and_errors_print_data_inert(tmp_path):
    name = tmp_path / "data\x1b]0;owned\x07\u202e.jsonl"
    rows = [{"id": f"x{i}\x1b[2J\u202e", "instruction": f"Summarise {HOSTILE}", "output": f"ok {i}"} for i in range(3)]
    name.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ws = str(tmp_path / "ws")
    assert run("ingest", str(name), "-w", ws).exit_code == 0
    for args in (("search", "Summarise clip", "-w", ws), ("info", "-w", ws), ("search", "clip", "-w", ws, "--json")):
        result = run(*args)
        assert result.exit_code == 0, result.stderr
        assert not ACTIVE.search(result.stdout + result.stderr), (args, repr(result.stdout))
    hits = json.loads(run("search", "clip", "-w", ws, "--json").stdout)["hits"]
    assert {h["id"] for h in hits} == {r["id"] for r in rows}  # --json keeps the exact data, escaped

    bad = tmp_path / "bad\x1b[2J\x9b1m\u202e.jsonl"
    bad.write_text('{"instruction": 1\n')
    result = run("ingest", str(bad), "-w", str(tmp_path / "ws2"))
    assert result.exit_code == 2 and result.stderr.startswith("error: ")
    assert not ACTIVE.search(result.stderr), repr(result.stderr)
