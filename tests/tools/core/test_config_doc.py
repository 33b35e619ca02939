"""One home for configuration: docs/configuration.md is the settings model's table, every knob says its
meaning, nothing outside tools/core/settings.py reads or writes GOALCOVER_* variables, and renamed
variables keep working with a deprecation warning."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from goalcover.tools.core import config_doc, settings
from goalcover.tools.core.settings import AgentLimits, EmbedSettings, Settings, load_settings

ROOT = Path(__file__).resolve().parents[3]
# ui/webauth.py's logins belong to another change (h27a); they are named in docs/configuration.md's header.
NOT_YET = {"ui/webauth.py"}
ENV_ACCESS = re.compile(r"""(environ(\.get|\.setdefault|\.pop)?\s*[(\[]\s*f?["']GOALCOVER_|getenv\(\s*f?["']GOALCOVER_)""")


def test_the_configuration_doc_is_generated_from_the_settings_model():
    assert config_doc.DOC.read_text(encoding="utf-8") == config_doc.render(), (
        "docs/configuration.md differs from the settings model: run `python -m goalcover.tools.core.config_doc`"
    )


def test_every_setting_has_a_meaning_and_a_row():
    assert config_doc.undocumented() == []
    text = config_doc.render()
    for name in Settings.model_fields:
        assert f"`GOALCOVER_{name.upper()}`" in text or name in ("base_url", "api_key", "max_sample_chars")
    # The parts read on their own are the same fields as in Settings.
    assert set(EmbedSettings.model_fields) | set(AgentLimits.model_fields) <= set(Settings.model_fields)


def test_no_goalcover_variable_is_read_or_written_outside_the_settings_module():
    offenders = []
    for folder in ("tools", "agent", "ui"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel == "tools/core/settings.py" or rel in NOT_YET:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if ENV_ACCESS.search(line):
                    offenders.append(f"{rel}:{number}: {line.strip()}")
    assert offenders == []


def test_the_old_ingest_limit_name_still_works_and_says_it_is_deprecated(monkeypatch):
    monkeypatch.setattr(settings, "_warned", set())
    monkeypatch.setenv("GOALCOVER_MAX_SAMPLE_CHARS", "1234")
    with pytest.warns(FutureWarning, match="GOALCOVER_MAX_SAMPLE_CHARS is deprecated.*GOALCOVER_INGEST_MAX_SAMPLE_CHARS"):
        assert load_settings().max_sample_chars == 1234
    monkeypatch.setenv("GOALCOVER_INGEST_MAX_SAMPLE_CHARS", "99")  # the new name wins
    assert load_settings().max_sample_chars == 99
    assert load_settings(max_sample_chars=7).max_sample_chars == 7  # and the field name still overrides


def test_the_new_names_raise_no_warning_and_bad_values_name_the_variable(monkeypatch):
    monkeypatch.delenv("GOALCOVER_MAX_SAMPLE_CHARS", raising=False)
    monkeypatch.setenv("GOALCOVER_INGEST_MAX_SAMPLE_CHARS", "0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(Exception, match="Invalid setting GOALCOVER_INGEST_MAX_SAMPLE_CHARS"):
            load_settings()


@pytest.mark.parametrize(("value", "on"), [("1", True), ("yes", True), ("0", False), ("", False), ("off", False)])
def test_debug_is_on_for_any_value_but_the_false_ones(monkeypatch, value, on):
    monkeypatch.setenv("GOALCOVER_DEBUG", value)
    assert settings.debug_enabled() is on
    assert load_settings().debug is on


def test_agent_limits_come_from_the_settings_model(monkeypatch):
    from goalcover.agent.configuration import AgentConfig
    from goalcover.tools.core.settings import ModelConfig

    monkeypatch.setenv("GOALCOVER_AGENT_MAX_SAMPLE_CHARS", "700")
    monkeypatch.setenv("GOALCOVER_AGENT_RECURSION_LIMIT", "9")

    class FakeWorkspace:  # only `settings.model_for` is read
        class settings:
            @staticmethod
            def model_for(role):
                return ModelConfig(role=role, model="m", api_key="k")

    config = AgentConfig.from_workspace(FakeWorkspace())
    assert (config.max_sample_chars, config.recursion_limit, config.max_history_tokens) == (700, 9, 24_000)
