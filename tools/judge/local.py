"""Local models: find an OpenAI-compatible server on this machine, and start llama.cpp's.

Users audit private data and often cannot send it to a hosted API. With no model configured, GoalCover
looks on the usual local ports (Ollama 11434, llama.cpp 8080, vLLM 8000) and says exactly what to set.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from goalcover.tools.core.errors import BadInput, GoalCoverError

USUAL_PORTS = {11434: "Ollama", 8080: "llama.cpp", 8000: "vLLM"}


@dataclass
class LocalServer:
    """An OpenAI-compatible server found on a local port: its kind (ollama, llama.cpp, vllm), base URL and the
    models it serves."""

    base_url: str
    kind: str
    models: list[str]

    def settings(self) -> str:
        """The environment settings that point GoalCover at this server (see local_settings)."""
        return local_settings(self.base_url, self.models[0] if self.models else "MODEL")


def local_settings(base_url: str, model: str, ctx: int | None = None, agent_stream: bool = True) -> str:
    """The environment settings for a local model: its endpoint, its name, and the judge mode measured
    best for small local models, probe (one yes/no token per pair: on Qwen2.5-Coder-1.5B as good as pair
    mode with G-Eval logprobs at a sixth of the time; evals/README.md, "The local judge, measured"), with
    the model's fitted P(yes) cut points where this project has calibrated it (probe.CALIBRATED_CUTS), and
    the server's context window `ctx` (tokens) when known, so long samples are cut to fit it (tools/judge/fit.py);
    with `agent_stream` False, GOALCOVER_AGENT_STREAM=0 for a server that cannot stream tool calls (serve's
    TOOL_CHAT_FORMAT)."""
    from goalcover.tools.judge.probe import calibrated_cuts

    line = f"OPENAI_BASE_URL={base_url} GOALCOVER_MODEL={model} GOALCOVER_JUDGE_MODE=probe"
    cuts = calibrated_cuts(model)
    if cuts:
        line += " GOALCOVER_PROBE_THRESHOLDS='[" + ",".join(f"{c:g}" for c in cuts) + "]'"
    if ctx:
        line += f" GOALCOVER_JUDGE_CONTEXT_TOKENS={ctx}"
    if not agent_stream:
        line += " GOALCOVER_AGENT_STREAM=0"
    return line


def probe(base_url: str, timeout: float = 0.5) -> list[str] | None:
    """The model names a server at `base_url` (ending in /v1) serves, or None if nothing answers."""
    try:
        response = httpx.get(f"{base_url.rstrip('/')}/models", timeout=timeout)
        response.raise_for_status()
        return [m.get("id", "") for m in response.json().get("data", [])]
    except (httpx.HTTPError, ValueError, AttributeError):
        return None


def detect(host: str = "127.0.0.1", ports: dict[int, str] = USUAL_PORTS, timeout: float = 0.5) -> list[LocalServer]:
    """The local servers that answer on the usual ports (Ollama 11434, llama.cpp 8080, vLLM 8000), waiting
    at most `timeout` seconds (0.5) for each."""
    found = []
    for port, kind in ports.items():
        base_url = f"http://{host}:{port}/v1"
        models = probe(base_url, timeout)
        if models is not None:
            found.append(LocalServer(base_url, kind, models))
    return found


def suggestion() -> str:
    """What to tell a user who has no model configured."""
    servers = detect()
    if servers:
        offers = "; ".join(f"{s.kind} at {s.base_url} serves {', '.join(s.models[:3]) or 'a model'}" for s in servers)
        return f"Found a local OpenAI-compatible server: {offers}. To use it: export {servers[0].settings()}"
    return (
        "No local server answers on ports 11434 (Ollama), 8080 (llama.cpp) or 8000 (vLLM). Start one, e.g. "
        "`goalcover local serve --model FILE.gguf` (needs `pip install goalcover[local]`), or use a hosted API "
        "with OPENAI_API_KEY."
    )


# llama-cpp-python's chat handler that can call tools on any ChatML-style model: it answers tool_choice "auto"
# (a grammar lets the model pick a message or one of the tools) and a named tool, but not "required" (500).
TOOL_CHAT_FORMAT = "chatml-function-calling"


def serve(model: Path, port: int = 8080, host: str = "127.0.0.1", ctx: int = 4096, threads: int | None = None,
          ready_timeout: float = 120.0, chat_format: str | None = None) -> subprocess.Popen:
    """Start llama-cpp-python's OpenAI-compatible server on `model` and wait until it answers.

    `chat_format` is llama-cpp-python's `--chat_format` (e.g. TOOL_CHAT_FORMAT, which lets the agent call
    tools); None keeps the GGUF's own chat template, which answers in text only. Raises BadInput (no such
    file, not GGUF, port taken) and GoalCoverError (runtime missing, server exited or did not answer)."""
    model = model.expanduser().resolve()
    if not model.is_file():
        raise BadInput(f"{model}: no such model file")
    with model.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise BadInput(f"{model}: not a GGUF model file (llama.cpp reads .gguf)")
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError:
        raise GoalCoverError(
            "the local server needs llama-cpp-python: `pip install 'goalcover[local]'` (it compiles llama.cpp, "
            "about 9 minutes on 2 cores), or run scripts/install-local.sh"
        ) from None
    # A connect, not an HTTP probe: a busy llama.cpp server holds its port without answering for minutes.
    with socket.socket() as sock:
        sock.settimeout(0.5)
        if sock.connect_ex((host, port)) == 0:
            raise BadInput(f"port {port} is taken by another server; choose another with --port")
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", host, "--port", str(port),
        "--n_ctx", str(ctx), "--n_threads", str(threads or os.cpu_count() or 2),
    ]
    if chat_format:
        command += ["--chat_format", chat_format]
    # llama.cpp logs a lot: to a file, not a pipe nobody reads (a full pipe would stall the server).
    log = Path(tempfile.gettempdir()) / f"goalcover-llama-{port}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://{host}:{port}/v1"
    deadline = time.monotonic() + ready_timeout
    while probe(base_url, 0.5) is None:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-800:]
            raise GoalCoverError(f"the llama.cpp server exited with code {proc.returncode} (log: {log}): {tail}")
        if time.monotonic() > deadline:
            stop(proc)
            raise GoalCoverError(f"the llama.cpp server did not answer on {base_url} within {ready_timeout:.0f} s")
        time.sleep(0.3)
    return proc


def stop(proc: subprocess.Popen) -> None:
    """Stop a server started by `serve` (SIGTERM to its process group, SIGKILL after 10 s)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
