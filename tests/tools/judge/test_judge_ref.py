"""One judge identity (tools/judge/judge_ref.py): resolved once from the settings then the arguments, read
back from what older runs stored, and the same for the CLI, the agent and the app's buttons."""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from goalcover.tools.core.errors import BadInput
from goalcover.tools.core.settings import load_settings
from goalcover.tools.core.store import JUDGE_KEY
from goalcover.tools.core.workspace import Workspace
from goalcover.tools.judge.calls import VERDICT_SCHEMA, prompt_version
from goalcover.tools.judge.judge_ref import JudgeRef, current_judge
from goalcover.tools.measure.coverage import coverage
from tests.conftest import SFT, head_lines
from tests.support.judges import CONTRACT_PATTERNS, keyword_judge
from tests.tools.judge.test_scoring import GOAL_FILE

N = 4


def test_resolve_takes_the_settings_then_the_arguments():
    settings = load_settings(judge_model="j", judge_base_url="http://judge/v1", judge_mode="pair", judge_anchors=True)
    ref = JudgeRef.resolve(settings)
    assert (ref.model, ref.base_url, ref.mode, ref.prompt_version, ref.jurors) == ("j", "http://judge/v1", "pair", prompt_version("pair", True), ())
    assert JudgeRef.resolve(settings, "probe").prompt_version.endswith("/probe")  # the argument wins
    with pytest.raises(BadInput, match="batched, pair or probe"):
        JudgeRef.resolve(settings, "pairs")
    with pytest.raises(ValidationError):  # frozen: a judge is not edited in place
        ref.mode = "batched"  # type: ignore[misc]


def test_a_jury_and_its_jurors_without_swapping_settings():
    settings = load_settings(model="m", base_url="http://default/v1", judge_base_urls={"b": "http://b/v1"}, api_key="k")
    jury = JudgeRef.resolve(settings, "batched", jurors=["a", "b"])
    assert jury.model == "jury(a,b)" and jury.jurors == ("a", "b")
    a, b = (jury.juror(m, settings) for m in jury.jurors)
    assert (a.base_url, b.base_url) == ("http://default/v1", "http://b/v1")
    assert a.prompt_version == b.prompt_version == jury.prompt_version
    config = b.endpoint(settings)
    assert (config.model, config.base_url, config.api_key) == ("b", "http://b/v1", "k")
    assert settings.judge_model is None and settings.judge_base_url is None  # untouched
    with pytest.raises(ValueError):
        jury.endpoint(settings)


def test_stored_rows_old_and_new_read_back_and_keep_their_shape():
    single = {"model": "m", "prompt_version": "judge-v1/batched", "mode": "batched"}
    jury = {"model": "jury(a,b)", "prompt_version": "judge-v2/pair", "mode": "pair", "jury": ["a", "b"]}
    for stored in (single, jury):
        ref = JudgeRef.from_stored(stored)
        assert ref.to_stored() == stored and ref.model_dump() == stored and json.loads(ref.model_dump_json()) == stored
        assert ref["prompt_version"] == stored["prompt_version"] and {**ref} == stored  # dict-style reads still work
    old = JudgeRef.from_stored({"model": "m", "prompt_version": "judge-v1/batched"})  # before the mode was stored
    assert old.mode == "batched" and old.key == ("judge-v1/batched", "m")
    assert JudgeRef.from_stored(None) is None and JudgeRef.from_stored({}) is None


@pytest.fixture
def template(tmp_path, fake_openai):
    """A workspace with N contracts samples and the contracts goal, copied once per path below."""
    from goalcover.tools.core.goal import load_goal_file, save_goal
    from goalcover.tools.data.ingest import ingest_file

    fake_openai.rules.append(keyword_judge(CONTRACT_PATTERNS))
    data = head_lines(SFT / "contracts_alpaca.jsonl", tmp_path / "c.jsonl", N)
    with Workspace.open(tmp_path / "template") as ws:
        ingest_file(ws, data)
        save_goal(ws, load_goal_file(GOAL_FILE))
    return tmp_path / "template"


class _Recorder:
    async def send(self, content, actions=None, elements=None):
        pass

    async def user(self, text, name):
        pass


class _Line:  # the app's progress line draws into a Chainlit message: not what is tested here
    def __init__(self, *args, **kwargs):
        pass

    def push(self, *args, **kwargs):
        pass

    async def end(self, **kwargs):
        pass


def test_the_cli_the_agent_and_the_buttons_score_in_the_mode_of_the_settings(template, tmp_path, fake_openai, monkeypatch):
    from types import SimpleNamespace

    import goalcover.ui.actions as actions_module
    from goalcover.agent.configuration import AgentConfig
    from goalcover.agent.context import ToolContext
    from goalcover.agent.state import State
    from goalcover.agent.tools_scoring import RunScoringArgs, run_scoring
    from goalcover.ui.actions import Actions
    from goalcover.ui.cli import app

    for key, value in {"GOALCOVER_JUDGE_MODE": "pair", "GOALCOVER_MODEL": "fake-model", "OPENAI_BASE_URL": fake_openai.base_url,
                       "OPENAI_API_KEY": "test"}.items():
        monkeypatch.setenv(key, value)
    expected = JudgeRef.resolve(load_settings())
    assert expected.mode == "pair"
    roots = {name: tmp_path / name for name in ("cli", "agent", "app")}
    for root in roots.values():
        shutil.copytree(template, root)
    seen: dict[str, list] = {}

    def calls_since(start: int) -> list:
        return [r for r in fake_openai.requests[start:] if r.schema_name == "judgment"]

    start = len(fake_openai.requests)
    result = CliRunner().invoke(app, ["score", "-w", str(roots["cli"]), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["mode"] == "pair"
    seen["cli"] = calls_since(start)

    start = len(fake_openai.requests)
    with Workspace.open(roots["agent"]) as ws:
        answer = asyncio.run(run_scoring(ToolContext(ws, State(), AgentConfig.from_workspace(ws)), RunScoringArgs()))
        assert answer.data["mode"] == "pair"
    seen["agent"] = calls_since(start)

    start = len(fake_openai.requests)
    monkeypatch.setattr(actions_module, "ProgressLine", _Line)
    shown = []

    async def coverage_view(out, ws, text, *args, **kwargs):  # its charts need a Chainlit session
        shown.append(text)

    monkeypatch.setattr(actions_module.views, "coverage_view", coverage_view)
    with Workspace.open(roots["app"]) as ws:
        chat = SimpleNamespace(ws=ws, out=_Recorder(), user_name="You")
        assert Actions(chat).judge == expected
        asyncio.run(Actions(chat).score_run())
    assert shown and shown[-1].startswith("Scoring finished")
    seen["app"] = calls_since(start)

    for name, root in roots.items():
        with Workspace.open(root) as ws:
            # the same judge, stored alike (the store keeps what judged, not where it was called)
            assert current_judge(ws) == expected.model_copy(update={"base_url": None}), name
            assert ws.store.get_meta(JUDGE_KEY) == {"model": "fake-model", "prompt_version": expected.prompt_version, "mode": "pair"}
            report = coverage(ws)
            assert report.judge == current_judge(ws) and report.unscored == 0
        # pair mode: one call per sample × subgoal, each asking for one verdict
        assert len(seen[name]) == N * len(CONTRACT_PATTERNS), name
        assert all(set(r.schema["properties"]) == set(VERDICT_SCHEMA["properties"]) for r in seen[name]), name
    kinds = {json.dumps(r.schema, sort_keys=True) for calls in seen.values() for r in calls}
    assert len(kinds) == 1  # the same request schema from all three
