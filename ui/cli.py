"""`goalcover`: the engine on the command line, no agent needed.

Every command takes --workspace (env GOALCOVER_WORKSPACE); exit 0 on success, 2 on bad input or usage,
1 on other failures. --json prints one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import signal
import sys

import typer

from goalcover.ui.cli_calibrate import calibrate
from goalcover.ui.cli_data import info, ingest, search
from goalcover.ui.cli_gaps import export, gaps, review, synthesize, why
from goalcover.ui.cli_iterate import diff, history, pool_app, verify
from goalcover.ui.cli_local import local_app
from goalcover.ui.cli_output import ProgressBar, id_column, print_json  # noqa: F401  (re-exported: tests and scripts use them)
from goalcover.ui.cli_score import goal, report, score
from goalcover.ui.common import handle_errors, tidy_help

app = typer.Typer(
    name="goalcover",
    help="Audit a fine-tuning dataset against your goal: ingest it, split the goal into subgoals, score "
    "every sample against every subgoal with an LLM judge, and see what the data teaches and what it lacks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# The commands live by topic in cli_data, cli_score, cli_gaps and cli_local; they are registered here in
# the order `goalcover --help` lists them.
for command in (ingest, search, goal, score, calibrate, report, gaps, why, synthesize, review, export, history, diff, verify):
    app.command()(command)
app.add_typer(local_app, name="local")
app.add_typer(pool_app, name="pool")


# --- chat ------------------------------------------------------------------------------------------

def _register_chat_and_ui() -> None:
    from goalcover.ui.chat import chat_command
    from goalcover.ui.cli_users import ui_app

    app.command("chat")(handle_errors(chat_command))
    app.add_typer(ui_app(), name="ui")  # `goalcover ui` serves; `goalcover ui users` manages logins


_register_chat_and_ui()
app.command()(info)


tidy_help(app)


def _terminate(signum, frame) -> None:
    """SIGTERM (a `kill`, a service stop) raises KeyboardInterrupt, as Ctrl-C does: every `finally` runs
    (temporary files removed, transactions rolled back) and the command exits 130 with its one line."""
    raise KeyboardInterrupt


def main() -> None:
    """The `goalcover` entry point; the chat leaves without the interpreter's slow teardown (see exit_now).
    SIGTERM is handled as Ctrl-C (see _terminate)."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app()
    except SystemExit as done:
        if sys.argv[1:2] == ["chat"]:
            from goalcover.ui.common import exit_now

            exit_now(done.code)
        raise


if __name__ == "__main__":
    main()
