"""Logins end on pages already open, too.

Chainlit checks a page's login token (JWT) when its socket connects and on every HTTP call (buttons,
uploads, the conversation list), but not on the events an open socket sends afterwards: a page that was
open when its user was removed, a password changed or the login expired (GOALCOVER_UI_LOGIN_HOURS) could
go on chatting, editing messages and writing to the data layer. `guard_events` wraps Chainlit's handlers of
those events so each first checks the token again with Chainlit's own `decode_jwt` (and so the current key,
ui/webauth.py `token_secret`); an ended login gets one line on the page telling it to log in again, and the
event does nothing else: no message is stored, nothing reaches the agent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import chainlit as cl
import chainlit.auth.jwt
import jwt
from chainlit.context import init_ws_context
from chainlit.session import WebsocketSession

LOGIN_ENDED = ("Your login has ended (a user was removed, a password changed, or the login expired), so this "
               "was not done. Reload the page and log in again.")
# The socket events a page sends after connecting that reach the app or the data layer. Not guarded:
# connect (Chainlit checks the token itself), disconnect, stop and clear_session (they only end work).
EVENTS = ("client_message", "edit_message", "message_favorite", "fetch_favorites", "window_message",
          "audio_start", "audio_chunk", "audio_end", "chat_settings_change", "chat_settings_edit")
_GUARDED = "_goalcover_login_guard"


def login_ended(token: str | None) -> bool:
    """Whether a page's login token (Chainlit's JWT, None when the page has none) no longer holds: its
    signature fails under the current key (users or passwords changed), it expired, or it is malformed."""
    if not token:
        return True
    try:
        chainlit.auth.jwt.decode_jwt(token)
    except (jwt.InvalidTokenError, AssertionError):  # bad signature, expired, malformed; no key at all
        return True
    return False


def guard_events(sio: Any, events: tuple[str, ...] = EVENTS) -> None:
    """Wrap `sio`'s (python-socketio AsyncServer, Chainlit's `chainlit.server.sio`) handlers of `events` on
    the default namespace so an event from a page whose login ended is answered with LOGIN_ENDED and
    dropped. Idempotent (Chainlit may load the app module twice); events without a handler are skipped."""
    handlers = sio.handlers.get("/", {})
    for event in events:
        handler = handlers.get(event)
        if handler is not None and not getattr(handler, _GUARDED, False):
            handlers[event] = _guarded(handler)


def _guarded(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def guarded(sid: str, *args: Any) -> Any:
        session = WebsocketSession.get(sid)
        if session is not None and login_ended(session.token):
            context = init_ws_context(session)
            # Shown, not stored: the emitter alone (Message.send would write it to the data layer).
            await context.emitter.send_step(cl.ErrorMessage(content=LOGIN_ENDED, author="GoalCover").to_dict())
            return None
        return await handler(sid, *args)

    setattr(guarded, _GUARDED, True)
    return guarded
