"""`goalcover local`: find a local OpenAI-compatible server, or start llama.cpp's."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from goalcover.ui.cli_output import err, out, print_json
from goalcover.ui.common import JsonOpt, handle_errors


# --- local models ----------------------------------------------------------------------------------

local_app = typer.Typer(help="Run on a local model: find a local OpenAI-compatible server, or start llama.cpp's.", no_args_is_help=True)


@local_app.command("detect")
@handle_errors
def local_detect(as_json: JsonOpt = False) -> None:
    """Look for OpenAI-compatible servers on the usual local ports (Ollama 11434, llama.cpp 8080, vLLM 8000)."""
    from goalcover.tools.judge.local import detect, suggestion

    servers = detect()
    if as_json:
        print_json({"servers": [s.__dict__ for s in servers]})
        return
    out.print(suggestion(), highlight=False, markup=False, soft_wrap=True)


@local_app.command("serve")
@handle_errors
def local_serve(
    model: Annotated[Path, typer.Option("--model", "-m", help="A .gguf model file.", show_default=False)],
    port: Annotated[int, typer.Option("--port", help="Loopback port to serve on.")] = 8080,
    ctx: Annotated[int, typer.Option("--ctx", help="Context window in tokens (the printed settings cut long samples to fit it).")] = 4096,
    chat_format: Annotated[str, typer.Option("--chat-format", help="llama-cpp-python chat format; the default lets `goalcover chat` call tools on ChatML-style models (Qwen, SmolLM2); '' keeps the model's own template (text only).")] = "chatml-function-calling",
) -> None:
    """Start llama.cpp's OpenAI-compatible server on a GGUF model and serve until Ctrl-C.

    Needs the `local` extra (scripts/install-local.sh). Waits until the server answers and prints the
    settings to use.
    """
    from goalcover.tools.judge.local import local_settings, probe, serve, stop

    with err.status(f"starting llama.cpp on {model.name}…"):
        proc = serve(model, port=port, ctx=ctx, chat_format=chat_format or None)
    base_url = f"http://127.0.0.1:{port}/v1"
    name = (probe(base_url) or [str(model)])[0]
    # soft_wrap: the export line stays one line at any terminal width, so it pastes whole.
    out.print(f"serving {model.name} at {base_url}\nuse it with:\n  export {local_settings(base_url, name, ctx, agent_stream=not chat_format)}",
              highlight=False, markup=False, soft_wrap=True)

    def terminated(signum, frame):  # SIGTERM (process managers, test harnesses) stops the server like Ctrl-C
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop(proc)
        signal.signal(signal.SIGTERM, previous)
