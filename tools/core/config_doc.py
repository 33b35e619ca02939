"""docs/configuration.md, generated from the settings model (`Settings` in settings.py), so the table of
`GOALCOVER_*` variables cannot drift from the code.

    python -m goalcover.tools.core.config_doc          # rewrite docs/configuration.md
    python -m goalcover.tools.core.config_doc --check  # exit 1 if it differs from the model

tests/tools/core/test_config_doc.py fails when the file and the model differ.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic.fields import FieldInfo

from goalcover.tools.core.settings import DEPRECATED_NAMES, AgentLimits, EmbedSettings, Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"

HEADER = """# Configuration

Every knob is an environment variable read by one settings model (`Settings` in `tools/core/settings.py`,
pydantic-settings); nothing else in the engine, the agent or the apps reads `GOALCOVER_*` variables.
Command-line options (`--workspace`, `--mode`, ...) win over these. An invalid value stops the command
with `Invalid setting NAME: reason` (exit 2).

This file is generated: `python -m goalcover.tools.core.config_doc` rewrites it from the model, and a test
fails when they differ. Change a field's `description` there, not here. Outside the model: the web app's
logins (`GOALCOVER_UI_PASSWORD`, `GOALCOVER_UI_USERS`, see the README's chat app section) and the test
suite's `GOALCOVER_DATASETS` and `GOALCOVER_REQUIRE_LOCAL` (README, Tests).

"""

GROUPS: list[tuple[str, type]] = [
    ("Workspace, models and the judge", Settings),
    ("Embeddings", EmbedSettings),
    ("The agent's limits", AgentLimits),
]


def env_names(name: str, field: FieldInfo) -> list[str]:
    """The environment variables that set field `name`, first the one to use: its alias choices, else
    `GOALCOVER_<NAME>`."""
    alias = field.validation_alias
    choices = getattr(alias, "choices", None)
    if choices:
        return [str(c) for c in choices]
    if isinstance(alias, str):
        return [alias]
    return [f"GOALCOVER_{name.upper()}"]


def default_text(field: FieldInfo) -> str:
    """A field's default as a reader writes it: `unset` for None, JSON-ish lists and dicts, plain numbers."""
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and value >= 1_000:
        return f"{value:,}"
    return f"`{value}`" if isinstance(value, (list, dict, Path)) else str(value)


def rows(model: type) -> list[str]:
    """Markdown table rows for the fields `model` itself declares (not those it inherits)."""
    own = model.__dict__.get("__annotations__", {})
    out = []
    for name, field in model.model_fields.items():
        if name not in own:
            continue
        names = env_names(name, field)
        current = [n for n in names if n not in DEPRECATED_NAMES]
        old = [n for n in names if n in DEPRECATED_NAMES]
        cell = ", ".join(f"`{n}`" for n in current)
        if old:
            cell += " (old name, deprecated: " + ", ".join(f"`{n}`" for n in old) + ")"
        meaning = (field.description or "").replace("|", "\\|").replace("\n", " ")
        out.append(f"| {cell} | {default_text(field)} | {meaning} |")
    return out


def render() -> str:
    """The whole of docs/configuration.md."""
    parts = [HEADER]
    for title, model in GROUPS:
        parts.append(f"## {title}\n\n| variable | default | meaning |\n|---|---|---|\n")
        parts.append("\n".join(rows(model)) + "\n\n")
    return "".join(parts).rstrip() + "\n"


def undocumented() -> list[str]:
    """Fields of `Settings` without a description (every knob must say its unit and meaning)."""
    return [name for name, field in Settings.model_fields.items() if not field.description]


def main(argv: list[str] | None = None) -> int:
    """Write docs/configuration.md (or, with --check, exit 1 when it is out of date)."""
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in argv:
        same = DOC.exists() and DOC.read_text(encoding="utf-8") == text
        print("docs/configuration.md is up to date" if same else "docs/configuration.md is out of date")
        return 0 if same else 1
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
