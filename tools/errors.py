"""Errors the engine raises on purpose.

Every error a user can cause carries one readable message that names the file, line or field; the CLI
prints it and exits 2. Anything else is a bug and exits 1.
"""

from __future__ import annotations


class GoalCoverError(Exception):
    """A failure the user should read, not a traceback. Exit code 1."""

    exit_code = 1


class BadInput(GoalCoverError):
    """The user's file, argument or settings are wrong. Exit code 2."""

    exit_code = 2


class ConfigError(BadInput):
    """A command needs a setting (a model, an endpoint) that is not configured."""
