"""`goalcover chat` in the terminal: driven through a pipe, in this process and in real subprocesses."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import typer
from rich.console import Console
from typer.testing import CliRunner

from goalcover.testing import Reply, sequence
from goalcover.ui.chat import chat_command, run_chat
from tests.agent.conftest import agent_turn

GOAL = "My goal is plain-English summaries of contract clauses."


def remembering_model(req):
    """Answers from what the conversation sent to it, so the test sees what a resumed thread remembers."""
    if not agent_turn(req):
        return None
    users = req.contents("user")
    if users == [GOAL]:
        return Reply.text("Noted your goal.")
    if users[:1] == [GOAL] and "Noted your goal." in req.contents("assistant"):
        return Reply.text(f"Earlier you said: {users[0]}")
    return Reply.text("I have no record of that.")


def chat_process(fake, workspace, lines: str, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "GOALCOVER_MODEL": "fake-model",
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_API_KEY": "test",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "goalcover.ui.chat", "-w", str(workspace), *args],
        input=lines,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_a_new_process_with_the_same_thread_id_continues_the_conversation(fake_openai, tmp_path):
    fake_openai.rules.append(remembering_model)
    first = chat_process(fake_openai, tmp_path / "ws", f"{GOAL}\n/quit\n", "--thread", "t-proc")
    assert first.returncode == 0, first.stderr
    assert "new thread t-proc" in first.stdout and "Noted your goal." in first.stdout
    assert "continue with: goalcover chat --thread t-proc" in first.stdout

    second = chat_process(fake_openai, tmp_path / "ws", "What did I tell you?\n", "--thread", "t-proc")
    assert second.returncode == 0, second.stderr
    assert "continuing thread t-proc" in second.stdout
    assert f"Earlier you said: {GOAL}" in second.stdout


def chat(workspace, lines: str, **kwargs) -> tuple[str, str]:
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=False, color_system=None)
    thread = run_chat(workspace, stdin=io.StringIO(lines), console=console, **kwargs)
    return thread, out.getvalue()


def test_pipe_answers_the_approval_and_new_starts_a_thread(fake_openai, monkeypatch, contracts_ws):
    from tests.support.judges import CONTRACT_PATTERNS, keyword_judge

    for key, value in {"GOALCOVER_MODEL": "fake-model", "OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": "test"}.items():
        monkeypatch.setenv(key, value)
    workspace = contracts_ws().root
    fake_openai.rules += [
        sequence(
            [
                Reply.tool_calls([{"name": "run_scoring", "arguments": {}}]),
                Reply.text("Scored all 20 samples."),
                Reply.text("Hello in a new thread."),
                Reply.text("Still here."),
            ],
            when=agent_turn,
        ),
        keyword_judge(CONTRACT_PATTERNS),
    ]
    first, out = chat(workspace, "score the data\ny\n/new\nhello\n")
    assert "approve run_scoring?" in out and "20 calls" in out and "Run it? [y/N] y" in out
    assert "→ run_scoring {}" in out and "✓ run_scoring: 100 new judgments, 0 failed, 20 calls" in out
    assert "run_scoring: 20/20" in out  # progress, one line when piped
    assert "Scored all 20 samples." in out
    assert "new thread " in out and "Hello in a new thread." in out
    assert f"continue with: goalcover chat --thread {first}" in out

    again, out = chat(workspace, "anyone?\n")  # no flags: the workspace's last thread
    assert again == first and f"continuing thread {first}" in out and "Hello in a new thread." in out
    _, out = chat(workspace, "", new=True)
    assert "new thread" in out


def test_chat_command_registers_with_typer(fake_openai, monkeypatch):
    from goalcover.ui.cli import handle_errors

    app = typer.Typer()
    app.command("chat")(handle_errors(chat_command))
    app.command("noop")(lambda: None)  # two commands, as in the real CLI
    runner = CliRunner()
    shown = runner.invoke(app, ["chat", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "--thread" in shown.output and "--new" in shown.output and "--workspace" in shown.output
    both = runner.invoke(app, ["chat", "--thread", "x", "--new"])
    assert both.exit_code == 2 and "give one or the other" in both.output
    unset = runner.invoke(app, ["chat"])  # no model configured: one clear line, exit 2
    assert unset.exit_code == 2 and "GOALCOVER_AGENT_MODEL" in unset.output
