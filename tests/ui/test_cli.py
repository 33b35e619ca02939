"""The CLI's contract: exit codes, one clear message on bad input, the design's --json keys."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from goalcover.ui.cli import app
from tests.conftest import BAD, SFT, head_lines
from tests.tools.data.test_records import BAD_CASES

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_help_explains_every_command():
    result = run("--help")
    assert result.exit_code == 0
    for command in ("ingest", "search", "info", "goal", "score", "report", "gaps", "why", "synthesize", "review", "export"):
        assert command in result.stdout
    ingest_help = run("ingest", "--help").stdout
    assert "--skip-invalid" in ingest_help and "--workspace" in ingest_help and "sharegpt" in ingest_help


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_bad_files_exit_2_with_one_message(name, tmp_path):
    result = run("ingest", str(BAD / name), "-w", str(tmp_path / "ws"))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and str(BAD / name) in result.stderr.replace("\n", "")
    assert "Traceback" not in result.stderr + result.stdout


def test_directory_and_usage_errors_exit_2(tmp_path):
    assert run("ingest", str(tmp_path), "-w", str(tmp_path / "ws")).exit_code == 2
    assert run("ingest", str(SFT / "mbpp_alpaca.jsonl"), "--format", "yaml", "-w", str(tmp_path / "ws")).exit_code == 2
    assert run("search", "x", "-k", "0").exit_code == 2
    # option values checked inside a command body are usage errors too (exit 2), not internal errors
    for args, said in ((("score", "--via", "x"), "choose live or batch"), (("score", "--mode", "nope", "--dry-run"), "choose batched, pair or probe"),
                       (("ingest", "--add", "--replace", str(SFT / "mbpp_alpaca.jsonl")), "exclude each other")):
        result = run(*args, "-w", str(tmp_path / "ws"))
        assert result.exit_code == 2 and said in result.stderr and "internal error" not in result.stderr, result.stderr


def test_ingest_json_has_the_fixed_keys_and_search_finds(tmp_path):
    data = head_lines(SFT / "mbpp_alpaca.jsonl", tmp_path / "mbpp.jsonl", 30)
    result = run("ingest", str(data), "-w", str(tmp_path / "ws"), "--json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert {k: payload[k] for k in ("samples", "format", "invalid", "new", "unchanged")} == {
        "samples": 30, "format": "alpaca", "invalid": 0, "new": 30, "unchanged": 0,
    }
    hits = json.loads(run("search", "minimum cost path in a matrix", "-k", "2", "-w", str(tmp_path / "ws"), "--json").stdout)
    assert hits["hits"][0]["id"] == "mbpp-1"
    summary = run("ingest", str(data), "-w", str(tmp_path / "ws")).stdout
    assert "30 samples" in summary and "unchanged 30" in summary


def test_search_on_an_empty_workspace_says_what_to_do(tmp_path):
    result = run("search", "anything", "-w", str(tmp_path / "empty"))
    assert result.exit_code == 2 and "goalcover ingest" in result.stderr


def test_real_process_exit_code_and_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "goalcover", "ingest", str(BAD / "invalid_utf8.jsonl"), "-w", str(tmp_path / "ws")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "line 2" in proc.stderr and "UTF-8" in proc.stderr and "Traceback" not in proc.stderr


def test_goal_score_report_through_the_cli(tmp_path, fake_openai, monkeypatch):
    from tests.support.judges import CONTRACT_PATTERNS, keyword_judge
    from tests.tools.judge.test_scoring import GOAL_FILE

    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    monkeypatch.setenv("GOALCOVER_MODEL", "fake-model")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    ws = str(tmp_path / "ws")
    data = head_lines(SFT / "contracts_alpaca.jsonl", tmp_path / "c.jsonl", 12)
    assert run("ingest", str(data), "-w", ws).exit_code == 0
    assert run("score", "-w", ws).exit_code == 2  # no goal yet: says how to set one
    goal = json.loads(run("goal", "--file", str(GOAL_FILE), "-w", ws, "--json").stdout)
    assert [s["id"] for s in goal["subgoals"]] == ["S1", "S2", "S3", "S4", "S5"]
    plan = json.loads(run("score", "--dry-run", "-w", ws, "--json").stdout)
    assert (plan["calls"], plan["to_score"]) == (12, 60)
    monkeypatch.setenv("GOALCOVER_JUDGE_MODE", "probe")  # the configured mode is the default: a call per pair
    assert json.loads(run("score", "--dry-run", "-w", ws, "--json").stdout)["calls"] == 60
    assert json.loads(run("score", "--dry-run", "--mode", "batched", "-w", ws, "--json").stdout)["calls"] == 12
    monkeypatch.delenv("GOALCOVER_JUDGE_MODE")
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_BASE_URL")
    text = run("score", "--dry-run", "-w", ws)  # a dry run needs the model name only, no key and no endpoint
    assert text.exit_code == 0, text.stderr
    assert "Score 60 sample × subgoal pairs with fake-model: 12 model calls" in text.stdout
    assert "cost unknown: no price is set for fake-model" in text.stdout  # not a bare $0.0000
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    assert fake_openai.stats()["requests"] == 0  # a dry run calls nothing
    scored = json.loads(run("score", "-w", ws, "--json").stdout)
    assert {k: scored[k] for k in ("judgments", "calls", "failed", "cached")} == {"judgments": 60, "calls": 12, "failed": 0, "cached": 0}
    again = json.loads(run("score", "-w", ws, "--json").stdout)
    assert (again["calls"], again["cached"]) == (0, 60)
    report = json.loads(run("report", "-w", ws, "--json").stdout)
    assert report["samples"] == 12 and len(report["subgoals"]) == 5
    assert run("report", "--format", "html", "-o", str(tmp_path / "r.html"), "-w", ws).exit_code == 0
    assert (tmp_path / "r.html").read_text().startswith("<!doctype html>")
    assert "| S1 |" in run("report", "-w", ws).stdout
    filtered = json.loads(run("search", "account", "--where", "score_S1>=4", "-k", "12", "-w", ws, "--json").stdout)
    assert all(h["metadata"]["score_S1"] == 5 for h in filtered["hits"])


def test_a_missing_model_is_a_clear_error(tmp_path):
    data = head_lines(SFT / "contracts_alpaca.jsonl", tmp_path / "c.jsonl", 3)
    ws = str(tmp_path / "ws")
    run("ingest", str(data), "-w", ws)
    result = run("goal", "a contracts summarizer", "-w", ws)
    assert result.exit_code == 2 and "GOALCOVER_AGENT_MODEL" in result.stderr
    assert "OPENAI_API_KEY" in result.stderr and "OPENAI_BASE_URL" in result.stderr  # hosted and local, both named


def test_gaps_why_synthesize_review_export_through_the_cli(tmp_path, fake_openai, monkeypatch):
    from tests.support.judges import CONTRACT_PATTERNS, synth_writer, topical_judge
    from tests.tools.judge.test_scoring import GOAL_FILE

    fake_openai.rules += [synth_writer(off_target=0), topical_judge(CONTRACT_PATTERNS)]
    for key, value in {"GOALCOVER_MODEL": "fake-model", "OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": "t"}.items():
        monkeypatch.setenv(key, value)
    ws = str(tmp_path / "ws")
    data = head_lines(SFT / "contracts_alpaca.jsonl", tmp_path / "c.jsonl", 40)
    for args in (("ingest", str(data)), ("goal", "--file", str(GOAL_FILE)), ("score",)):
        assert run(*args, "-w", ws).exit_code == 0
    requests = len(fake_openai.requests)
    planned = run("gaps", "--dry-run", "-w", ws)
    assert planned.exit_code == 0 and "labelling calls: at most" in planned.stdout and "cost unknown" in planned.stdout
    assert len(fake_openai.requests) == requests  # a plan calls nothing
    gaps = json.loads(run("gaps", "-w", ws, "--json").stdout)["gaps"]
    assert gaps and set(gaps[0]) >= {"id", "subgoal_id", "label", "description", "size", "sample_ids"}
    s1 = json.loads(run("gaps", "--subgoal", "S1", "-w", ws, "--json").stdout)["gaps"][0]
    assert s1["subgoal_id"] == "S1"
    from goalcover.tools.core.workspace import Workspace

    def stored_gaps() -> list[dict]:
        with Workspace.open(ws) as opened:
            return opened.store.get_meta("gaps")

    before_why, requests = stored_gaps(), len(fake_openai.requests)
    answer = json.loads(run("why", "S1", "-w", ws, "--json").stdout)
    assert answer["subgoal_id"] == "S1" and answer["answer"] and answer["facts"]["gaps"]
    # why only reads: no clustering, no gap label, no renumbering; at most the prose drafts over the facts
    assert all("FACTS:" in (r.last_user or "") for r in fake_openai.requests[requests:])
    assert len(fake_openai.requests) - requests <= 2 and stored_gaps() == before_why
    completions = fake_openai.stats()["completions"]
    facts_only = json.loads(run("why", "S1", "--facts-only", "-w", ws, "--json").stdout)
    assert facts_only["grounded_by"] == "facts" and facts_only["facts"] == answer["facts"]
    assert fake_openai.stats()["completions"] == completions and stored_gaps() == before_why  # no model call at all
    rerun = json.loads(run("gaps", "-w", ws, "--json").stdout)["gaps"]
    assert [(g["id"], g["sample_ids"]) for g in rerun] == [(g["id"], g["sample_ids"]) for g in gaps]  # stable ids
    requests = len(fake_openai.requests)
    plan = json.loads(run("synthesize", "--gap", s1["id"], "-n", "5", "--dry-run", "-w", ws, "--json").stdout)
    assert plan["step"] == "synthesis" and plan["calls"] == 1 + 5 and plan["est_cost"] is None
    assert len(fake_openai.requests) == requests
    made = json.loads(run("synthesize", "--gap", s1["id"], "-n", "5", "-w", ws, "--json").stdout)
    assert {k: made[k] for k in ("gap_id", "generated", "kept")} == {"gap_id": s1["id"], "generated": 5, "kept": 5}
    assert made["duplicates"] == made["rejected_by_judge"] == 0
    listed = json.loads(run("review", "--accept", "all", "-w", ws, "--json").stdout)["synthetic"]
    assert len(listed) == 5 and {i["state"] for i in listed} == {"accepted"}
    out = tmp_path / "out.jsonl"
    exported = json.loads(run("export", "-o", str(out), "--with-synthetic", "--drop-off-goal", "-w", ws, "--json").stdout)
    assert exported["synthetic"] == 5 and exported["written"] == 40 - exported["dropped"] + 5
    assert set(exported) >= {"path", "written", "dropped", "synthetic"}
    refused = run("export", "-o", str(data), "-w", ws)
    assert refused.exit_code == 2 and "refusing to overwrite" in refused.stderr
    assert run("why", "S9", "-w", ws).exit_code == 2


def test_help_texts_are_paragraphs_and_markup_prints_as_written(monkeypatch):
    wide = runner.invoke(app, ["score", "--help"], env={"COLUMNS": "200"}).stdout
    assert (
        "Each judgment is saved the moment it arrives: interrupt at any time (Ctrl-C, a crash, a kill) and run again to "
        "finish without paying twice." in wide
    )
    served = runner.invoke(app, ["ui", "--help"], env={"COLUMNS": "200"}).stdout
    assert "default http://127.0.0.1:8000) without opening a browser; --open opens one" in served
    monkeypatch.setattr("goalcover.tools.judge.local.detect", lambda: [])
    detected = run("local", "detect")
    assert detected.exit_code == 0 and "pip install goalcover[local]" in detected.stdout.replace("\n", " ")


def test_progress_fits_80_columns():
    from rich.console import Console

    from goalcover.ui import cli

    bar = cli.ProgressBar("indexing", fields=("cost", "failed"))
    bar(123_456, 987_654, tokens="12,345,678", cost="$1234.5678", failed=12_345)
    try:
        width = Console(width=300).measure(bar.bar.make_tasks_table(bar.bar.tasks)).maximum
    finally:
        bar.bar.stop()
    assert width <= cli.ProgressBar.WIDTH, width


def test_info_is_a_table_goal_file_says_what_it_saved_and_ids_are_never_cut(tmp_path):
    from tests.tools.judge.test_scoring import GOAL_FILE

    long_ids = [f"contract-clause-{n:03d}-with-a-long-identifier-users-copy" for n in range(3)]
    data = tmp_path / "long.jsonl"
    data.write_text("".join(json.dumps({"id": i, "instruction": f"Explain clause {n}.", "input": "", "output": "Termination."}) + "\n"
                            for n, i in enumerate(long_ids)))
    ws = str(tmp_path / "ws")
    assert run("ingest", str(data), "-w", ws).exit_code == 0
    info = runner.invoke(app, ["info", "-w", ws], env={"COLUMNS": "300"})
    assert info.exit_code == 0 and not info.stdout.lstrip().startswith("{"), info.stdout
    assert re.search(r"│ samples +│ 3 +│", info.stdout) and re.search(r"│ format +│ alpaca +│", info.stdout)
    assert str(data) in info.stdout
    assert json.loads(run("info", "-w", ws, "--json").stdout)["samples"] == 3
    saved = run("goal", "--file", str(GOAL_FILE), "-w", ws)
    assert "saved the goal and 5 subgoals (S1, S2, S3, S4, S5) from" in saved.stderr.replace("\n", " ")
    found = runner.invoke(app, ["search", "termination clause", "-k", "3", "-w", ws], env={"COLUMNS": "80"})
    assert found.exit_code == 0 and all(i in found.stdout for i in long_ids)  # whole, on one line
