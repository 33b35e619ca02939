"""`goalcover ui`: serve the Chainlit chat app (ui/app.py) on one workspace.

The app runs as `python -m chainlit run ui/app.py --headless` in this process's place (exec), so a signal
sent to `goalcover ui` reaches the server itself. Everything it needs travels in the environment: the
workspace (GOALCOVER_WORKSPACE), the model settings as they are, and CHAINLIT_APP_ROOT, a folder inside
the workspace that holds Chainlit's config, its welcome page and the uploads — so Chainlit writes nothing
into the current directory and deleting the workspace removes every trace. Nothing is fetched at start:
LITERAL_API_KEY and DATABASE_URL are dropped, so no cloud data layer is ever set up.

Chainlit is imported only by the server process, never here.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from goalcover.tools.core.errors import BadInput
from goalcover.ui.common import WorkspaceOpt, run_alone

APP = Path(__file__).resolve().with_name("app.py")
# chainlit.md and .chainlit/config.toml live at the repository root (next to ui/).
SOURCE_ROOT = APP.parents[1]
PUBLIC = Path(__file__).resolve().with_name("public")  # served by Chainlit at /public
APP_ROOT_NAME = ".chainlit-app"
# Environment variables that would make Chainlit talk to a server of its own choosing at start.
DROPPED_ENV = ("LITERAL_API_KEY", "LITERAL_API_URL", "DATABASE_URL")

FALLBACK_CONFIG = """\
[project]
enable_telemetry = false
session_timeout = 3600
allow_origins = ["*"]

[features]
edit_message = false
unsafe_allow_html = false
latex = false

[features.spontaneous_file_upload]
enabled = true
accept = ["*/*"]
max_files = 5
max_size_mb = 200

[UI]
name = "GoalCover"
cot = "full"
custom_css = "/public/goalcover.css"
"""
FALLBACK_WELCOME = "# GoalCover\n\nUpload your dataset (the paperclip, or drag and drop a file) and tell me your goal.\n"


def app_root(workspace: Path) -> Path:
    """Chainlit's root folder for this workspace, with the config and welcome page copied in fresh."""
    root = workspace / APP_ROOT_NAME
    (root / ".chainlit").mkdir(parents=True, exist_ok=True)
    config, welcome = SOURCE_ROOT / ".chainlit" / "config.toml", SOURCE_ROOT / "chainlit.md"
    if config.is_file():
        shutil.copyfile(config, root / ".chainlit" / "config.toml")
    else:  # installed without the repository's files: a config with the same essentials
        (root / ".chainlit" / "config.toml").write_text(FALLBACK_CONFIG, encoding="utf-8")
    if welcome.is_file():
        shutil.copyfile(welcome, root / "chainlit.md")
    else:
        (root / "chainlit.md").write_text(FALLBACK_WELCOME, encoding="utf-8")
    if PUBLIC.is_dir():  # the stylesheet that makes action buttons look like buttons (config: custom_css)
        shutil.copytree(PUBLIC, root / "public", dirs_exist_ok=True)
    return root


def server_command(workspace: Path | None, port: int, host: str, headless: bool = True,
                   allow_open: bool = False) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that serve the app on `workspace` (created if missing). Raises
    BadInput for a bad port, a users list that cannot be read one way only, or a host beyond loopback
    without a login unless `allow_open` (ui/webauth.py)."""
    from goalcover.tools.core.workspace import Workspace
    from goalcover.ui import webauth

    if not 0 < port < 65536:
        raise BadInput(f"--port {port}: choose a port between 1 and 65535")
    with Workspace.open(workspace) as ws:
        root = ws.root
    webauth.check_serving(host, root, allow_open)
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env["GOALCOVER_WORKSPACE"] = str(root)
    env["CHAINLIT_APP_ROOT"] = str(app_root(root))
    env["GOALCOVER_UI_HOST"] = host  # the app allows typed server paths only on loopback
    command = [sys.executable, "-m", "chainlit", "run", str(APP), "--host", host, "--port", str(port)]
    if headless:
        command.append("--headless")
    return command, env


def ui_command(
    workspace: WorkspaceOpt = None,
    port: Annotated[int, typer.Option("--port", "-p", help="Port to serve on.")] = 8000,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0 to reach it from other machines).")] = "127.0.0.1",
    headless: Annotated[bool, typer.Option("--headless/--open", help="Don't open a browser window (default), or open one.")] = True,
    allow_open: Annotated[bool, typer.Option("--allow-open", help="Serve beyond loopback without a login (refused otherwise).")] = False,
) -> None:
    """Serve the chat app: upload a dataset, state your goal, review its coverage.

    Serves on http://HOST:PORT (default http://127.0.0.1:8000) without opening a browser; --open opens one
    as well. Without a login, reopening the page continues the
    workspace's one, shared conversation. Set GOALCOVER_UI_PASSWORD to require a login (any user name; each user
    gets a workspace of their own), or add named users with `goalcover ui users add NAME` (hashed, in
    WORKSPACE/.ui-users; GOALCOVER_UI_USERS="alice:pw1,bob:pw2" works too). A login lasts
    GOALCOVER_UI_LOGIN_HOURS (24); changing users or passwords ends earlier logins. Serving beyond loopback
    (--host 0.0.0.0) without a login is refused unless --allow-open. With a login, each user's
    conversations are kept in WORKSPACE/conversations/ (reload restores one; the sidebar lists them). Needs a model with tool calling for the
    conversation (GOALCOVER_AGENT_MODEL or GOALCOVER_MODEL).
    """
    command, env = server_command(workspace, port, host, headless, allow_open)
    sys.stderr.write(f"goalcover ui: serving {env['GOALCOVER_WORKSPACE']} on http://{host}:{port}\n")
    sys.stderr.flush()
    os.execve(command[0], command, env)


def main() -> None:
    """`python -m goalcover.ui.serve`: the same command on its own, with the CLI's error handling."""
    run_alone(ui_command)


if __name__ == "__main__":
    main()
