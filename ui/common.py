"""What every command line of the project shares: the --workspace and --json options, and the error
handling that turns engine errors into one clear line and the design's exit codes."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from goalcover.tools.core.errors import ConfigError, GoalCoverError
from goalcover.ui.inert import inert
from goalcover.tools.core.messages import user_message
from goalcover.tools.core.settings import debug_enabled

err = Console(stderr=True)

WorkspaceOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--workspace",
        "-w",
        help="Folder that holds the project's state (default ./goalcover-workspace, env GOALCOVER_WORKSPACE).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of a summary.")]


def handle_errors(command):
    """Turn engine errors into one clear line and the design's exit codes — never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except GoalCoverError as exc:
            message = user_message(exc)
            if isinstance(exc, ConfigError) and "No model is configured" in message:
                from goalcover.tools.judge.local import suggestion

                message += " " + suggestion()
            err.print(f"[bold red]error:[/] {inert(message)}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: it may land before a writer's cleanup is in place
            from goalcover.tools.core.files import remove_own_temps

            remove_own_temps()
            err.print("interrupted; run the command again to continue where it stopped")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, typer.BadParameter):  # a bad option value: the usage error, exit 2
            raise
        except Exception as exc:  # a bug: say so plainly, keep the traceback for those who ask
            from goalcover.tools.core.failures import explain

            if (clear := explain(exc)) is not None:  # a full disk, a database another process holds
                err.print(f"[bold red]error:[/] {inert(str(clear))}", highlight=False, soft_wrap=True)
                raise typer.Exit(clear.exit_code) from None
            if debug_enabled():
                raise
            err.print(
                f"[bold red]internal error:[/] {inert(user_message(exc))} (set GOALCOVER_DEBUG=1 for the traceback)",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1) from None

    return wrapper


def run_alone(command) -> None:
    """`python -m goalcover.ui.X`: one command on its own, with the same error handling as the CLI."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(handle_errors(command))
    app()


def exit_now(code: int | str | None = 0) -> None:
    """End the process at once, skipping the interpreter's teardown (about 2,000 imported modules: 0.6 to
    1 s on 2 cores, long enough to make Ctrl-C in `goalcover chat` feel stuck). Only for entry points,
    after the command has closed its workspace and sessions: everything durable is committed by then."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else (0 if code is None else 1))


def reflow(text: str | None) -> str:
    """A docstring as paragraphs: single line breaks inside a paragraph joined (the help formatter wraps
    them to the terminal), blank lines kept, Rich markup escaped so `goalcover[local]` prints as written."""
    import inspect

    paragraphs = inspect.cleandoc(text or "").split("\n\n")
    return "\n\n".join(escape(" ".join(line.strip() for line in p.splitlines())) for p in paragraphs)


def tidy_help(app: typer.Typer) -> None:
    """Give every command of `app` (and of its sub-apps) its docstring as reflowed, escaped help."""
    for command in app.registered_commands:
        if command.callback is not None and command.help is None:
            command.help = reflow(command.callback.__doc__)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            tidy_help(group.typer_instance)
