"""Who may use the chat app, and where each user's work lives.

No password set: no login, and the app works on the workspace itself (and serves only on loopback unless
GOALCOVER_UI_ALLOW_OPEN=true). With GOALCOVER_UI_PASSWORD set, Chainlit asks for a login; any user name
(letters, digits, `._@-`) with that password gets in. Named users come from the users file
(WORKSPACE/.ui-users, or GOALCOVER_UI_USERS_FILE), which `goalcover ui users add NAME` writes with scrypt
password hashes, and/or from GOALCOVER_UI_USERS="alice:PW,bob:PW" (PW plain or such a hash). A users list
that cannot be read one way only (an entry without a ":", a bad name, a name twice, an empty password)
is refused with a message naming the entry, never guessed at. Either way each user works in a workspace
of their own, WORKSPACE/users/NAME, so nobody sees another user's dataset, scores or conversations.

Chainlit signs its login cookies (JWT) with CHAINLIT_AUTH_SECRET; when it is not set, a secret is
generated once and kept in the workspace (readable by its owner only), so logins survive restarts. The key
that actually signs and checks them is derived from that secret and a fingerprint of the current user list
and passwords (`token_secret`), so removing a user or changing any password ends every login made before —
also on a page already open, whose socket events ui/login_guard.py checks again; a login lasts
GOALCOVER_UI_LOGIN_HOURS (default 24).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
from pathlib import Path

from goalcover.tools.core.errors import BadInput
from goalcover.tools.core.settings import Settings, load_settings

SECRET_ENV = "CHAINLIT_AUTH_SECRET"
SECRET_FILE = ".ui-auth-secret"
USERS_FILE = ".ui-users"
USERS_DIR = "users"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
# scrypt (RFC 7914, Python's hashlib) at the cost OWASP's password storage cheat sheet gives as a minimum:
# N=2^17, r=8, p=1 (128 MiB, ~0.3 s) — here N=2^15 (32 MiB) to keep a login under ~0.1 s on a small server.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
HASH_PREFIX = "scrypt$"


def hash_password(password: str) -> str:
    """`scrypt$N$r$p$SALT$HASH` (base64, 16-byte salt, 32-byte key): what the users file stores. Raises
    BadInput for an empty password."""
    if not password:
        raise BadInput("the password is empty")
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=2**26, dklen=32)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"{HASH_PREFIX}{SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt)}${b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored` (a `hash_password` hash, or a plain password from the
    environment), in constant time for a given stored value. A malformed hash matches nothing."""
    if not stored.startswith(HASH_PREFIX):
        return hmac.compare_digest(password.encode(), stored.encode())
    try:
        n, r, p, salt, key = stored[len(HASH_PREFIX):].split("$")
        salt_b, key_b = base64.b64decode(salt, validate=True), base64.b64decode(key, validate=True)
        got = hashlib.scrypt(password.encode(), salt=salt_b, n=int(n), r=int(r), p=int(p), maxmem=2**27, dklen=len(key_b))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, key_b)


def users_file(base: Path | None, settings: Settings | None = None) -> Path:
    """The users file: GOALCOVER_UI_USERS_FILE, else `base`/.ui-users (`base` defaults to the workspace)."""
    settings = settings or load_settings()
    if settings.ui_users_file is not None:
        return Path(settings.ui_users_file).expanduser()
    return Path(base if base is not None else Path(settings.workspace).expanduser()) / USERS_FILE


def _parse(entries: list[tuple[str, str]], where: str, found: dict[str, str]) -> None:
    for label, entry in entries:
        name, sep, secret = entry.partition(":")
        name = name.strip()
        if not sep:
            raise BadInput(
                f"{where}, {label}: {entry.strip()[:40]!r} has no ':' between a user name and a password (a password "
                "cannot contain ',' there; put such users in the users file with `goalcover ui users add NAME`)"
            )
        if not NAME.match(name):
            raise BadInput(f"{where}, {label}: {name[:40]!r} is not a valid user name (letters, digits and ._@- , at most 64)")
        if not secret:
            raise BadInput(f"{where}, {label}: user {name!r} has an empty password")
        if name in found:
            raise BadInput(f"{where}, {label}: user {name!r} is listed twice")
        found[name] = secret


def accounts(base: Path | None = None, settings: Settings | None = None) -> dict[str, str]:
    """The named users, {name: stored password (hash or plain)}: the users file, then GOALCOVER_UI_USERS.
    Raises BadInput naming the file and line, or the variable's entry, that cannot be read one way only."""
    settings = settings or load_settings()
    found: dict[str, str] = {}
    path = users_file(base, settings)
    if path.is_file():
        lines = path.read_text(encoding="utf-8").splitlines()
        _parse([(f"line {i}", line) for i, line in enumerate(lines, 1) if line.strip() and not line.lstrip().startswith("#")],
               str(path), found)
    if settings.ui_users and settings.ui_users.strip():
        _parse([(f"entry {i}", e) for i, e in enumerate(settings.ui_users.split(","), 1)], "GOALCOVER_UI_USERS", found)
    return found


def login_required(base: Path | None = None, settings: Settings | None = None) -> bool:
    """Whether the app asks for a login: a shared password or any named user is set."""
    settings = settings or load_settings()
    return bool(settings.ui_password or accounts(base, settings))


def check(username: str, password: str, base: Path | None = None) -> str | None:
    """The user's identifier if the name and password are right, else None."""
    settings = load_settings()
    name = username.strip()
    if not NAME.match(name):
        return None
    named = accounts(base, settings)
    expected = named.get(name) if named else settings.ui_password
    if not expected:
        return None
    return name if verify_password(password, expected) else None


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
    if not login_required(base) or os.environ.get(SECRET_ENV):
        return
    path = base / SECRET_FILE
    if not path.is_file():
        base.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    os.environ[SECRET_ENV] = path.read_text().strip()


def token_secret(base: Path | None = None) -> str | None:
    """The key that signs and checks login tokens: HMAC-SHA256 of CHAINLIT_AUTH_SECRET over the current
    user list and passwords (users file and environment), so a removed user or a changed password ends
    every earlier login. None when there is no CHAINLIT_AUTH_SECRET. Reads the users file each call (a
    file edited while the server runs takes effect at once)."""
    root = os.environ.get(SECRET_ENV)
    if not root:
        return None
    settings = load_settings()
    named = accounts(base, settings)
    fingerprint = "\n".join([f"password:{settings.ui_password or ''}", *(f"{n}:{p}" for n, p in sorted(named.items()))])
    return hmac.new(root.encode(), fingerprint.encode(), hashlib.sha256).hexdigest()


def is_loopback(host: str | None) -> bool:
    """Whether `host` is a loopback address or `localhost` (None, unknown, counts as not loopback)."""
    if not host:
        return False
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_serving(host: str, base: Path, allow_open: bool = False) -> None:
    """Refuse (BadInput) to serve beyond loopback without a login unless allowed (`--allow-open` or
    GOALCOVER_UI_ALLOW_OPEN=true); also refuses a users list that cannot be read one way only."""
    settings = load_settings()
    needed = login_required(base, settings)
    if not needed and not is_loopback(host) and not (allow_open or settings.ui_allow_open):
        raise BadInput(
            f"--host {host} serves beyond this machine without a login: anyone who reaches it could read and "
            "change the workspace. Set GOALCOVER_UI_PASSWORD or add users (`goalcover ui users add NAME`), or "
            "say it is meant with --allow-open (GOALCOVER_UI_ALLOW_OPEN=true)."
        )


def typed_paths_allowed() -> bool:
    """Whether a chat message that is a server path may ingest that file: only without logins and on a
    server bound to loopback (the person typing is then on the server's own machine)."""
    settings = load_settings()
    base = Path(settings.workspace).expanduser().resolve()
    return not login_required(base, settings) and is_loopback(settings.ui_host)
