"""Who may use the chat app, and where each user's work lives.

No password in the environment: no login, and the app works on the workspace itself. With
GOALCOVER_UI_PASSWORD set, Chainlit asks for a login; any user name (letters, digits, `._@-`) with that
password gets in. With GOALCOVER_UI_USERS="alice:pw1,bob:pw2" only those users get in, each with their own
password. Either way each user works in a workspace of their own, WORKSPACE/users/NAME, so nobody sees
another user's dataset, scores or conversations.

Chainlit signs its login cookies with CHAINLIT_AUTH_SECRET; when it is not set, a secret is generated
once and kept in the workspace (readable by its owner only), so logins survive restarts.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
from pathlib import Path

PASSWORD_ENV = "GOALCOVER_UI_PASSWORD"
USERS_ENV = "GOALCOVER_UI_USERS"
SECRET_ENV = "CHAINLIT_AUTH_SECRET"
SECRET_FILE = ".ui-auth-secret"
USERS_DIR = "users"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def accounts() -> dict[str, str]:
    """GOALCOVER_UI_USERS as {name: password}; names that are not valid are left out."""
    found: dict[str, str] = {}
    for entry in os.environ.get(USERS_ENV, "").split(","):
        name, sep, password = entry.strip().partition(":")
        if sep and password and NAME.match(name):
            found[name] = password
    return found


def login_required() -> bool:
    return bool(os.environ.get(PASSWORD_ENV) or accounts())


def check(username: str, password: str) -> str | None:
    """The user's identifier if the name and password are right, else None."""
    name = username.strip()
    if not NAME.match(name):
        return None
    named = accounts()
    expected = named.get(name) if named else os.environ.get(PASSWORD_ENV)
    if not expected:
        return None
    return name if hmac.compare_digest(password.encode(), expected.encode()) else None


def workspace_for(base: Path, user: str | None) -> Path:
    """The folder a user works in: the workspace itself without login, else their own subfolder."""
    if user is None:
        return base
    if not NAME.match(user):
        raise ValueError(f"not a valid user name: {user!r}")
    return base / USERS_DIR / user


def ensure_auth_secret(base: Path) -> None:
    """Set CHAINLIT_AUTH_SECRET from the workspace's secret file (created on first use) if a login is
    required and the environment does not give one."""
    if not login_required() or os.environ.get(SECRET_ENV):
        return
    path = base / SECRET_FILE
    if not path.is_file():
        base.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    os.environ[SECRET_ENV] = path.read_text().strip()
