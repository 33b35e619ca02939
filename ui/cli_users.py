"""`goalcover ui` as a group: serving the chat app (no subcommand, ui/serve.py) and `goalcover ui users`,
which keeps the app's named users in the users file (ui/webauth.py) with scrypt password hashes: one
`name:hash` line each, so no password can be misread as a separator."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from goalcover.tools.core.errors import BadInput
from goalcover.ui.common import JsonOpt, WorkspaceOpt, handle_errors, reflow
from goalcover.ui.inert import inert

users_app = typer.Typer(help="Named users of the chat app (`goalcover ui`): add, remove, list.", no_args_is_help=True)


def _file(workspace: Path | None) -> Path:
    from goalcover.tools.core.settings import load_settings
    from goalcover.ui import webauth

    settings = load_settings()
    base = Path(workspace if workspace is not None else settings.workspace).expanduser().resolve()
    return webauth.users_file(base, settings)


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.is_file() else []


def _write(path: Path, lines: list[str]) -> None:
    """Replace the users file in one step (a temporary file renamed over it), readable by its owner only."""
    from goalcover.tools.core.files import write_atomic  # a pid-named temporary, never through a symlink

    write_atomic(path, "".join(line + "\n" for line in lines), mode=0o600)


def _others(lines: list[str], name: str) -> list[str]:
    return [line for line in lines if line.partition(":")[0].strip() != name]


@users_app.command("add")
@handle_errors
def add(
    name: Annotated[str, typer.Argument(help="User name: letters, digits and ._@- (at most 64).")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin's first line.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Add a user, or set a new password for one: the password is asked twice (not echoed) and stored as
    an scrypt hash. A running app ends that user's (and everyone's) earlier logins at once."""
    from goalcover.ui import webauth

    if not webauth.NAME.match(name):
        raise BadInput(f"{name!r} is not a valid user name (letters, digits and ._@- , at most 64)")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt(f"password for {name}", hide_input=True, confirmation_prompt=True, err=True)
    path = _file(workspace)
    lines = _lines(path)
    webauth.accounts(path.parent)  # a users list that cannot be read one way only is named, not rewritten
    replaced = len(_others(lines, name)) != len(lines)
    _write(path, _others(lines, name) + [f"{name}:{webauth.hash_password(password)}"])
    typer.echo(f"{'changed the password of' if replaced else 'added'} {name} in {inert(path, markup=False)}", err=True)


@users_app.command("remove")
@handle_errors
def remove(name: Annotated[str, typer.Argument(help="The user to remove.")], workspace: WorkspaceOpt = None) -> None:
    """Remove a user: their earlier logins end at once (their workspace folder is kept)."""
    path = _file(workspace)
    lines = _lines(path)
    kept = _others(lines, name)
    if len(kept) == len(lines):
        raise BadInput(f"no user {name!r} in {path}")
    _write(path, kept)
    typer.echo(f"removed {name} from {inert(path, markup=False)}", err=True)


@users_app.command("list")
@handle_errors
def list_users(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """The named users (from the users file and GOALCOVER_UI_USERS), never their passwords."""
    from goalcover.ui import webauth
    from goalcover.ui.cli_output import print_json

    path = _file(workspace)
    names = sorted(webauth.accounts(path.parent))
    if as_json:
        print_json({"users_file": str(path), "users": names})
        return
    typer.echo("\n".join(inert(n, markup=False) for n in names) if names else "no users (add one: goalcover ui users add NAME)")


def ui_app() -> typer.Typer:
    """The `goalcover ui` group: without a subcommand it serves the app (ui/serve.py's options), and
    `users` manages the logins."""
    from goalcover.ui.serve import ui_command

    app = typer.Typer(help=reflow(ui_command.__doc__))

    @app.callback(invoke_without_command=True)
    @handle_errors
    def ui(
        ctx: typer.Context,
        workspace: WorkspaceOpt = None,
        port: Annotated[int, typer.Option("--port", "-p", help="Port to serve on.")] = 8000,
        host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0 to reach it from other machines).")] = "127.0.0.1",
        headless: Annotated[bool, typer.Option("--headless/--open", help="Don't open a browser window (default), or open one.")] = True,
        allow_open: Annotated[bool, typer.Option("--allow-open", help="Serve beyond loopback without a login (refused otherwise).")] = False,
    ) -> None:
        if ctx.invoked_subcommand is None:
            ui_command(workspace, port, host, headless, allow_open)

    ui.__doc__ = ui_command.__doc__
    app.add_typer(users_app, name="users")
    return app


__all__ = ["ui_app", "users_app"]
