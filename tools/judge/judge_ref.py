"""The judge's identity, typed: which model (or jury) judges, where it is called, under which prompt
version and in which mode.

A `JudgeRef` is resolved once — from the settings (GOALCOVER_JUDGE_MODE, GOALCOVER_JUDGE_MODEL or
GOALCOVER_MODEL, GOALCOVER_JUDGE_BASE_URL, GOALCOVER_JUDGE_ANCHORS), then the CLI's or the app's arguments
(`--mode`, `--judges`) — and handed to `scoring.plan`/`score`, the jury, the batch and Ray engines,
coverage and the judge-quality checks. Nothing swaps `ws.settings` to pick a judge: a juror is a JudgeRef
of its own, and `endpoint` builds its ModelConfig.

What is stored in SQLite (the workspace meta JUDGE_KEY, history snapshots, the report's "judge") keeps
its old shape, `{"model", "prompt_version", "mode"}` plus `"jury": [models]` for a jury (`to_stored`);
`from_stored` reads those rows back, old ones included. The cache keys of judgments stay
(prompt_version, model): a rerun pays for nothing it already has.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_serializer

from goalcover.tools.core.store import JUDGE_KEY
from goalcover.tools.judge.calls import Mode, check_mode, prompt_version

if TYPE_CHECKING:
    from goalcover.tools.core.settings import ModelConfig, Settings
    from goalcover.tools.core.workspace import Workspace

__all__ = ["JudgeRef", "current_judge", "jury_name", "save_judge"]

_STORED_KEYS = ("model", "prompt_version", "mode", "jury")


def jury_name(models: Sequence[str]) -> str:
    """The model name a jury's consensus judgments are stored under: `jury(M1,M2,…)`."""
    return f"jury({','.join(models)})"


class JudgeRef(BaseModel):
    """One judge: `model` (a jury's is `jury(M1,…)`), `prompt_version` (the cache key's version, e.g.
    "judge-v1/batched"), `mode` (batched, pair or probe), `base_url` (its endpoint; None: the OpenAI
    default, or unknown for a judge read back from the store) and `jurors` (a jury's models; () for one
    judge). Frozen. Serialises (model_dump, JSON) to the stored shape of `to_stored`."""

    model_config = ConfigDict(frozen=True)

    model: str = Field(min_length=1)
    prompt_version: str = Field(min_length=1)
    mode: Mode = "batched"
    base_url: str | None = None
    jurors: tuple[str, ...] = Field((), validation_alias=AliasChoices("jurors", "jury"))

    @classmethod
    def resolve(cls, settings: "Settings", mode: str | None = None, jurors: Sequence[str] | None = None) -> "JudgeRef":
        """The judge for these settings, with explicit arguments winning: `mode` (default
        GOALCOVER_JUDGE_MODE), `jurors` (a jury of these models; default one judge, GOALCOVER_JUDGE_MODEL
        or GOALCOVER_MODEL). The prompt version follows the mode and GOALCOVER_JUDGE_ANCHORS. Raises
        BadInput (unknown mode) and ConfigError (no judge model name for a single judge)."""
        mode = mode or settings.judge_mode
        check_mode(mode)
        version = prompt_version(mode, settings.judge_anchors)  # type: ignore[arg-type]  # checked above
        if jurors:
            return cls(model=jury_name(jurors), prompt_version=version, mode=mode, jurors=tuple(jurors))
        config = settings.model_for("judge", need_key=False)  # a name is enough to know the judge
        return cls(model=config.model, prompt_version=version, mode=mode, base_url=config.base_url)

    @classmethod
    def from_stored(cls, stored: dict | None) -> "JudgeRef | None":
        """A judge read back from the store (`to_stored`'s shape; rows written before the mode was recorded
        read as batched). None for None or {} (nothing scored yet)."""
        if not stored:
            return None
        if isinstance(stored, JudgeRef):
            return stored
        return cls.model_validate({"mode": "batched", **{k: v for k, v in stored.items() if k in _STORED_KEYS}})

    def to_stored(self) -> dict:
        """The JSON shape stored and reported: {model, prompt_version, mode} plus "jury" for a jury. The
        base URL is where the judge is called, not what it is, and is not stored."""
        stored: dict[str, Any] = {"model": self.model, "prompt_version": self.prompt_version, "mode": self.mode}
        if self.jurors:
            stored["jury"] = list(self.jurors)
        return stored

    @model_serializer
    def _serialise(self) -> dict:
        return self.to_stored()

    @property
    def key(self) -> tuple[str, str]:
        """(prompt_version, model): what the judgments of this judge are stored under."""
        return self.prompt_version, self.model

    def juror(self, model: str, settings: "Settings") -> "JudgeRef":
        """One juror of this judge's mode and prompt: `model` at its GOALCOVER_JUDGE_BASE_URLS endpoint, else
        the judge's (GOALCOVER_JUDGE_BASE_URL, then OPENAI_BASE_URL)."""
        base_url = settings.judge_base_urls.get(model, settings.judge_base_url or settings.base_url)
        return JudgeRef(model=model, prompt_version=self.prompt_version, mode=self.mode, base_url=base_url)

    def with_model(self, model: str) -> "JudgeRef":
        """The same mode and prompt judged by `model` (a vLLM replica of the Ray engine, say), at no endpoint."""
        return JudgeRef(model=model, prompt_version=self.prompt_version, mode=self.mode)

    def endpoint(self, settings: "Settings", need_key: bool = True) -> "ModelConfig":
        """The ModelConfig this judge's calls go to: its model and base URL, with the judge role's key,
        timeout and prices from `settings` (which are not changed). Raises ConfigError (no API key and no
        local endpoint, when `need_key`)."""
        if self.jurors:
            raise ValueError(f"{self.model} is a jury: call each of its jurors (JudgeRef.juror)")
        update = {"judge_model": self.model, "judge_base_url": self.base_url or settings.judge_base_url}
        return settings.model_copy(update=update).model_for("judge", need_key=need_key)

    # Read-only mapping access in the stored shape, for callers that still read the judge as a dict
    # (`judge["prompt_version"]`, `{**judge}`); new code reads the attributes.
    def __getitem__(self, key: str) -> Any:
        return self.to_stored()[key]

    def get(self, key: str, default: Any = None) -> Any:
        """`to_stored().get(key, default)`: the dict-style read of the stored shape."""
        return self.to_stored().get(key, default)

    def keys(self) -> Iterator[str]:
        """The stored shape's keys (so `{**judge}` gives `to_stored()`)."""
        return iter(self.to_stored())


def current_judge(ws: "Workspace") -> JudgeRef | None:
    """The judge of the workspace's current scores (the last scoring run's), or None before any."""
    return JudgeRef.from_stored(ws.store.get_meta(JUDGE_KEY))


def save_judge(ws: "Workspace", judge: JudgeRef) -> None:
    """Make `judge` the workspace's current judge (the one coverage, gaps and the report read)."""
    ws.store.set_meta(JUDGE_KEY, judge.to_stored())
