"""Issue 27 logins: F1 (a removed user's or changed password's login keeps working), F2 (serving beyond
loopback without a login; typed server paths), F14 (a users list that is silently misread). The login
tests talk HTTP to a real `goalcover ui` server (Chainlit's /login and /user), and drive a page whose
socket was open when its login ended in a real browser."""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import httpx
import pytest
from typer.testing import CliRunner

from goalcover.tools.core.errors import BadInput
from goalcover.ui import webauth
from goalcover.ui.cli import app
from goalcover.testing import FakeOpenAI
from tests.ui.conftest import agent_script, serve
from tests.ui.test_browser import expect_text, idle, send

runner = CliRunner()


def users(ws, *args: str, password: str | None = None):
    extra = ("--password-stdin",) if password is not None else ()
    return runner.invoke(app, ["ui", "users", *args, *extra, "-w", str(ws)], input=(password + "\n") if password else None)


def test_a_users_list_that_reads_two_ways_is_refused_naming_the_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("GOALCOVER_UI_USERS", "alice:pa,ss,bob:pw2")  # F14: alice's password was "pa"
    with pytest.raises(BadInput, match=r"GOALCOVER_UI_USERS, entry 2: 'ss' has no ':'"):
        webauth.accounts(tmp_path)
    result = runner.invoke(app, ["ui", "-w", str(tmp_path / "ws")])
    assert result.exit_code == 2 and "entry 2" in result.stderr and "goalcover ui users add" in result.stderr
    for bad, said in (("alice:a,alice:b", "listed twice"), ("../x:pw", "not a valid user name"), ("alice:", "empty password")):
        monkeypatch.setenv("GOALCOVER_UI_USERS", bad)
        with pytest.raises(BadInput, match=said):
            webauth.accounts(tmp_path)
    monkeypatch.delenv("GOALCOVER_UI_USERS")
    (tmp_path / ".ui-users").write_text("bob:x\nno-colon-here\n")
    with pytest.raises(BadInput, match=r"\.ui-users, line 2"):
        webauth.accounts(tmp_path)


def test_users_file_holds_hashes_that_any_password_fits(tmp_path):
    ws = tmp_path / "ws"
    assert users(ws, "add", "alice", password="pa,ss:wörd").exit_code == 0
    line = (ws / ".ui-users").read_text()
    assert line.startswith("alice:scrypt$") and "pa,ss" not in line and (ws / ".ui-users").stat().st_mode & 0o077 == 0
    assert webauth.check("alice", "pa,ss:wörd", ws) == "alice" and webauth.check("alice", "pa", ws) is None
    assert users(ws, "add", "bob", password="b").exit_code == 0 and users(ws, "list").stdout.split() == ["alice", "bob"]
    assert users(ws, "remove", "alice").exit_code == 0 and webauth.check("alice", "pa,ss:wörd", ws) is None
    assert users(ws, "remove", "alice").exit_code == 2


def test_serving_beyond_loopback_needs_a_login_or_an_explicit_yes(tmp_path, monkeypatch):
    from goalcover.ui.serve import server_command

    with pytest.raises(BadInput, match="without a login.*--allow-open"):
        server_command(tmp_path / "ws", 8123, "0.0.0.0")
    _, env = server_command(tmp_path / "ws", 8123, "0.0.0.0", allow_open=True)
    assert env["GOALCOVER_UI_HOST"] == "0.0.0.0"
    _, env = server_command(tmp_path / "ws", 8123, "127.0.0.1")
    # typed server paths: only on loopback and without logins
    monkeypatch.setenv("GOALCOVER_WORKSPACE", str(tmp_path / "ws"))
    for host, allowed in (("127.0.0.1", True), ("localhost", True), ("::1", True), ("0.0.0.0", False), ("10.0.0.5", False), ("", False)):
        monkeypatch.setenv("GOALCOVER_UI_HOST", host)
        assert webauth.typed_paths_allowed() is allowed, host
    monkeypatch.setenv("GOALCOVER_UI_HOST", "127.0.0.1")
    monkeypatch.setenv("GOALCOVER_UI_PASSWORD", "pw")
    assert webauth.typed_paths_allowed() is False
    server_command(tmp_path / "ws", 8123, "0.0.0.0")  # with a login it may serve anywhere


def test_a_removed_user_or_a_changed_password_ends_earlier_logins(tmp_path, fake_openai):
    ws = tmp_path / "ws"
    for name in ("alice", "bob"):
        assert users(ws, "add", name, password=f"pw-{name}").exit_code == 0
    with serve(ws, fake_openai, GOALCOVER_UI_LOGIN_HOURS="2") as url, httpx.Client(base_url=url, timeout=30) as http:
        def login(name: str, password: str) -> httpx.Cookies | None:
            http.cookies = httpx.Cookies()
            response = http.post("/login", data={"username": name, "password": password})
            if response.status_code != 200:
                return None
            assert "max-age=7200" in response.headers["set-cookie"].lower()  # GOALCOVER_UI_LOGIN_HOURS
            return response.cookies

        def who(cookies) -> str | None:
            http.cookies = cookies or httpx.Cookies()
            response = http.get("/user")
            return response.json()["identifier"] if response.status_code == 200 else None

        assert login("alice", "wrong") is None
        alice, bob = login("alice", "pw-alice"), login("bob", "pw-bob")
        assert who(alice) == "alice" and who(bob) == "bob"
        assert users(ws, "remove", "alice").exit_code == 0
        assert who(alice) is None and login("alice", "pw-alice") is None
        assert who(bob) is None  # the user list changed: every earlier login ends
        bob = login("bob", "pw-bob")
        assert who(bob) == "bob"
        assert users(ws, "add", "bob", password="new-pw").exit_code == 0  # a changed password
        assert who(bob) is None and login("bob", "pw-bob") is None and who(login("bob", "new-pw")) == "bob"


def test_a_page_open_when_its_login_ends_can_no_longer_chat(browser, tmp_path):
    """Chainlit checks the login token when the socket connects and on HTTP calls, not on socket
    events: the app checks it again on each (ui/login_guard.py), so the open page of a removed user is
    told to log in again, nothing reaches the agent and the message is not kept."""
    ws = tmp_path / "ws"
    for name in ("alice", "bob"):
        assert users(ws, "add", name, password=f"pw-{name}").exit_code == 0
    with FakeOpenAI(rules=[agent_script]) as fake, serve(ws, fake) as url:
        page = browser.new_page()
        page.goto(url)
        page.locator("#email").fill("alice")
        page.locator("#password").fill("pw-alice")
        page.locator("button[type=submit]").click()
        expect_text(page, "Start by uploading your dataset", 30_000)
        send(page, "hello while logged in")
        expect_text(page, "You said: hello while logged in")
        idle(page)

        calls = len(fake.requests)
        assert users(ws, "remove", "alice").exit_code == 0
        send(page, "hello after removal")
        expect_text(page, "Your login has ended")
        idle(page)
        assert len(fake.requests) == calls  # the agent never saw the message
        assert "You said: hello after removal" not in page.content()
        kept = sqlite3.connect(ws / "conversations" / "chat.sqlite").execute("SELECT output FROM steps").fetchall()
        assert ("hello while logged in",) in kept and ("hello after removal",) not in kept
        page.reload()  # and the page now asks for a login
        page.locator("#email").wait_for(state="visible", timeout=30_000)
        page.close()


def test_every_guarded_socket_event_of_an_ended_login_is_dropped(tmp_path, monkeypatch):
    """login_guard on Chainlit's handlers of the events a page sends after connecting (an edited message
    reruns the app on it and rewrites the stored one): a login that holds passes, an ended one is told so
    and goes no further; events outside the list and handlers already wrapped are left as they are."""
    import chainlit.auth.jwt
    from chainlit.user import User

    from goalcover.ui import login_guard

    key = {"now": "a key of thirty-two bytes or more, 1"}
    monkeypatch.setattr(chainlit.auth.jwt, "get_jwt_secret", lambda: key["now"])
    token = chainlit.auth.jwt.create_jwt(User(identifier="alice"))
    ran, shown = [], []

    async def handler(sid, payload):
        ran.append((sid, payload))

    sio = SimpleNamespace(handlers={"/": {"edit_message": handler, "client_message": handler, "stop": handler}})
    login_guard.guard_events(sio)
    login_guard.guard_events(sio)  # twice (the app module loaded again): wrapped once
    assert sio.handlers["/"]["stop"] is handler
    session = SimpleNamespace(token=token)
    emitter = SimpleNamespace(send_step=lambda step: asyncio.sleep(0, shown.append(step["output"])))
    monkeypatch.setattr(login_guard.WebsocketSession, "get", classmethod(lambda cls, sid: session))
    monkeypatch.setattr(login_guard, "init_ws_context", lambda s: SimpleNamespace(emitter=emitter))
    # Chainlit's message needs a live context (the browser test above has one): its shown text is what counts.
    monkeypatch.setattr(login_guard.cl, "ErrorMessage", lambda content, author: SimpleNamespace(to_dict=lambda: {"output": content}))

    def run(coroutine):  # in a thread of its own: Playwright's loop may be running in this one
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, coroutine).result()

    run(sio.handlers["/"]["edit_message"]("sid-1", {"message": "edited"}))
    assert ran == [("sid-1", {"message": "edited"})] and shown == []
    key["now"] = "a key of thirty-two bytes or more, 2"  # the users or passwords changed
    for event in ("edit_message", "client_message"):
        run(sio.handlers["/"][event]("sid-1", {"message": event}))
    assert len(ran) == 1 and shown == [login_guard.LOGIN_ENDED] * 2
    assert login_guard.login_ended(None) and login_guard.login_ended("not a token")
