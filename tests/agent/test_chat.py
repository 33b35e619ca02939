"""`goalcover chat` in the terminal: driven through a pipe, in this process and in real subprocesses."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time

import typer
from rich.console import Console
from typer.testing import CliRunner

from goalcover.testing import Reply, sequence
from goalcover.ui.chat import chat_command, run_chat
from tests.agent.conftest import N as N_SAMPLES
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
    assert "approve run_scoring?" in out and "20 model calls" in out and "cost unknown: no price is set for fake-model" in out and "Run it? [y/N] y" in out
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


class ChatProcess:
    """`goalcover chat` in a real subprocess with a pipe for stdin, its stdout collected line by line."""

    def __init__(self, fake, workspace, *args: str, **env: str) -> None:
        import threading

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "goalcover.ui.chat", "-w", str(workspace), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={
                **os.environ, "GOALCOVER_MODEL": "fake-model", "OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "test",
                "COLUMNS": "200", "PYTHONUNBUFFERED": "1", **env,
            },
        )
        self.lines: list[tuple[float, str]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line))

    def send(self, text: str) -> None:
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def wait_for(self, text: str, timeout: float = 60) -> float:
        """When a line holding `text` appeared (monotonic seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, line in list(self.lines):
                if text in line:
                    return at
            assert self.proc.poll() is None or self.lines, self.proc.stderr.read()
            time.sleep(0.01)
        raise AssertionError(f"{text!r} not seen in:\n{''.join(line for _, line in self.lines)}")

    @property
    def output(self) -> str:
        return "".join(line for _, line in self.lines)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def test_ctrl_c_stops_paid_scoring_within_a_second_and_nothing_is_paid_twice(fake_openai, contracts_ws):
    """SIGINT to a real `goalcover chat` while the judge runs: the turn stops within a second, the calls in
    flight are saved, the chat goes on; scoring again asks only for the rest (counted on the endpoint)."""
    import asyncio
    import signal
    import sqlite3

    from goalcover.testing import Faults
    from goalcover.tools.judge import scoring
    from tests.support.judges import CONTRACT_PATTERNS, keyword_judge

    ws = contracts_ws()
    fake_openai.rules += [
        sequence([Reply.tool_calls([{"name": "run_scoring", "arguments": {}}]), Reply.text("Back at the prompt.")], when=agent_turn),
        keyword_judge(CONTRACT_PATTERNS),
    ]
    fake_openai.set_faults(Faults(latency_ms=400))
    chat = ChatProcess(fake_openai, ws.root, "--new", GOALCOVER_CONCURRENCY="2")

    def judged() -> int:
        with sqlite3.connect(ws.store.path) as conn:
            return conn.execute("SELECT COUNT(DISTINCT sample_id) FROM judgments").fetchone()[0]

    try:
        chat.send("score the data\ny\n")
        deadline = time.monotonic() + 60
        while judged() < 4:
            assert time.monotonic() < deadline and chat.proc.poll() is None, chat.output
            time.sleep(0.02)
        sent = time.monotonic()
        chat.proc.send_signal(signal.SIGINT)
        stopped = chat.wait_for("(stopped; the conversation is kept)", timeout=10)
        print(f"SIGINT during scoring -> turn stopped after {stopped - sent:.3f} s")
        assert stopped - sent < 1.0, f"Ctrl-C took {stopped - sent:.2f} s"
        chat.send("anything?\n")  # the chat goes on after a stopped turn
        chat.wait_for("Back at the prompt.")
        chat.send("/quit\n")
        assert chat.proc.wait(timeout=15) == 0, chat.proc.stderr.read()
    finally:
        chat.close()

    calls = sum(r.schema_name == "judgment" for r in fake_openai.requests)
    assert 4 <= calls < N_SAMPLES and judged() == calls  # every call that was sent was answered and saved
    fake_openai.set_faults(Faults())
    rest = asyncio.run(scoring.score(ws))
    assert rest.calls == N_SAMPLES - calls and rest.judgments == N_SAMPLES * 5
    assert sum(r.schema_name == "judgment" for r in fake_openai.requests) == N_SAMPLES  # no sample paid twice


def test_ctrl_c_at_the_prompt_leaves_within_a_second(fake_openai, tmp_path):
    import signal

    fake_openai.rules.append(remembering_model)
    chat = ChatProcess(fake_openai, tmp_path / "ws", "--thread", "t-sig")
    try:
        chat.wait_for("goalcover chat")
        sent = time.monotonic()
        chat.proc.send_signal(signal.SIGINT)
        left = chat.wait_for("continue with", timeout=5)
        assert chat.proc.wait(timeout=5) == 0, chat.proc.stderr.read()
        print(f"SIGINT -> chat returned {left - sent:.3f} s, process ended {time.monotonic() - sent:.3f} s")
        assert time.monotonic() - sent < 1.0, (left - sent, time.monotonic() - sent)
        chat.reader.join(timeout=5)
        assert "continue with: goalcover chat --thread t-sig" in chat.output
    finally:
        chat.close()


def test_the_chat_progress_bar_fits_80_columns():
    from goalcover.agent.session import Progress
    from goalcover.ui.chat import Renderer

    console = Console(file=io.StringIO(), width=300, force_terminal=True)
    show = Renderer(console)
    show.show(Progress("run_scoring", 123_456, 987_654, {"tokens": "12,345,678", "cost": "$1234.5678", "failed": 12_345}))
    try:
        assert console.measure(show.bar.make_tasks_table(show.bar.tasks)).maximum <= 80
    finally:
        show.stop_bar()
