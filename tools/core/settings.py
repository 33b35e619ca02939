"""Settings from the environment (pydantic-settings), one place for every knob.

Model roles (`agent`, `judge`, `synth`) each take a base URL, model and key from
`GOALCOVER_<ROLE>_BASE_URL` / `_MODEL` / `_API_KEY`, falling back to `GOALCOVER_MODEL`,
`OPENAI_BASE_URL` and `OPENAI_API_KEY`, so one endpoint serves all roles unless told otherwise.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from goalcover.tools.core.errors import BadInput, ConfigError, describe_validation_error, field_path
from goalcover.tools.judge.fit import DEFAULT_CONTEXT_TOKENS

Role = Literal["agent", "judge", "synth"]
ROLES: tuple[Role, ...] = ("agent", "judge", "synth")


class ModelConfig(BaseModel):
    """Where one model role sends its calls."""

    role: Role
    model: str
    base_url: str | None = None
    api_key: str
    timeout_s: float = 60.0
    # USD per million tokens; 0 means unknown (a local or fake model), and costs show as 0.
    input_price_per_mtok: float = 0.0
    output_price_per_mtok: float = 0.0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for `prompt_tokens` + `completion_tokens` at this role's prices (0 when it has none)."""
        return (prompt_tokens * self.input_price_per_mtok + completion_tokens * self.output_price_per_mtok) / 1e6


EMBED_BACKENDS = ("auto", "openvino", "torch", "torch-bf16", "onnx", "onnx-int8")

# Old environment names that still work for one release, with a FutureWarning: old -> new.
DEPRECATED_NAMES = {"GOALCOVER_MAX_SAMPLE_CHARS": "GOALCOVER_INGEST_MAX_SAMPLE_CHARS"}
_warned: set[str] = set()


class EmbedSettings(BaseSettings):
    """The embedding knobs, readable on their own: `tools/data/embeddings.py` runs outside any workspace
    (Chroma's embedding function, Ray actors). Part of `Settings` too (inherited)."""

    model_config = SettingsConfigDict(env_prefix="GOALCOVER_", extra="ignore", validate_default=True)

    embed_backend: Literal["auto", "openvino", "torch", "torch-bf16", "onnx", "onnx-int8"] = Field(
        "auto", description="the embedding backend: auto (OpenVINO on CPU, PyTorch fallback), openvino, torch, "
        "torch-bf16, onnx or onnx-int8 (evals/bench_embed.py compares them)",
    )
    embed_device: Literal["cpu", "cuda"] = Field("cpu", description="where embeddings run: cpu, or cuda (a GPU where one is installed)")
    onnx_cache: Path | None = Field(
        None, description="folder of the exported ONNX / OpenVINO embedding model (default ~/.cache/goalcover/onnx, "
        "under XDG_CACHE_HOME when set)",
    )

    @field_validator("embed_backend", "embed_device", mode="before")
    @classmethod
    def _lower(cls, value, info):
        if isinstance(value, str):
            value = value.strip().lower()
            if not value:
                return cls.model_fields[info.field_name].default
        return value


class AgentLimits(BaseSettings):
    """Bounds on one conversation with the agent, readable on their own (the agent reads them when it
    starts). Part of `Settings` too (inherited)."""

    model_config = SettingsConfigDict(env_prefix="GOALCOVER_", extra="ignore", validate_default=True)

    agent_max_history_tokens: int = Field(
        24_000, ge=500, description="approximate tokens of conversation sent with each agent model call; older turns are left out first"
    )
    agent_max_tool_chars: int = Field(
        8_000, ge=500, description="characters of one tool result as the agent model sees it; longer ones are cut with a note"
    )
    agent_max_sample_chars: int = Field(
        1_500, ge=100, description="characters of one sample's text shown to the agent model in a tool result "
        "(what the model reads; the ingest limit is GOALCOVER_INGEST_MAX_SAMPLE_CHARS)",
    )
    agent_recursion_limit: int = Field(60, ge=5, description="model and tool steps within one user message before the run is stopped")
    agent_stream: bool = Field(
        True, description="stream the agent's replies; 0 for a server that cannot stream a tool call "
        "(llama-cpp-python's chatml-function-calling; `goalcover local serve` prints 0)",
    )


def debug_enabled() -> bool:
    """Whether GOALCOVER_DEBUG asks for tracebacks of internal errors: any value but empty, 0, false, no, off.
    Never raises (it is read while reporting another error)."""
    value = os.environ.get("GOALCOVER_DEBUG", "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


class Settings(EmbedSettings, AgentLimits):
    """Every knob, from GOALCOVER_* environment variables (and OPENAI_BASE_URL / OPENAI_API_KEY); the table
    in docs/configuration.md is generated from these fields (`python -m goalcover.tools.core.config_doc`)."""

    model_config = SettingsConfigDict(env_prefix="GOALCOVER_", extra="ignore", validate_default=True, populate_by_name=True)

    workspace: Path = Field(Path("goalcover-workspace"), description="the project folder (`--workspace` wins)")
    chroma_url: str | None = Field(None, description="a Chroma server (http://host:port) instead of the embedded index")

    model: str | None = Field(None, description="the model of every role unless a role names its own")
    base_url: str | None = Field(
        None, validation_alias=AliasChoices("GOALCOVER_BASE_URL", "OPENAI_BASE_URL"),
        description="the OpenAI-compatible endpoint of every role (unset: OpenAI)",
    )
    api_key: str | None = Field(
        None, validation_alias=AliasChoices("GOALCOVER_API_KEY", "OPENAI_API_KEY"),
        description="the API key of every role (local servers need none)",
    )
    agent_model: str | None = Field(None, description="the agent's model (conversation, subgoal proposals, why)")
    agent_base_url: str | None = Field(None, description="the agent's endpoint")
    agent_api_key: str | None = Field(None, description="the agent's API key")
    judge_model: str | None = Field(None, description="the judge's model (scoring)")
    judge_base_url: str | None = Field(None, description="the judge's endpoint")
    judge_base_urls: dict[str, str] = Field(
        {}, description='a jury\'s per-model endpoints, JSON: {"MODEL": "http://host/v1"}; others use the judge\'s'
    )
    judge_api_key: str | None = Field(None, description="the judge's API key")
    synth_model: str | None = Field(None, description="the model that writes synthetic samples and names gaps")
    synth_base_url: str | None = Field(None, description="the synthesis model's endpoint")
    synth_api_key: str | None = Field(None, description="the synthesis model's API key")
    llm_timeout_s: float = Field(60.0, gt=0, description="seconds one model call may take")
    json_mode: Literal["auto", "json_schema", "json_object"] = Field(
        "auto", description="how to ask for JSON: auto tries json_schema and falls back to json_object (llama-cpp-python)"
    )
    input_price_per_mtok: float = Field(0.0, ge=0, description="USD per million input tokens, for cost estimates and `--max-cost` (0: unknown)")
    output_price_per_mtok: float = Field(0.0, ge=0, description="USD per million output tokens (0: unknown)")
    batch_price_factor: float = Field(
        0.5, gt=0, le=1, description="the Batch API's price as a fraction of the live price (OpenAI: half)"
    )
    batch_poll_s: float = Field(10.0, gt=0, description="seconds between polls of a running batch (`score --via batch`)")

    # Scoring
    judge_mode: Literal["batched", "pair", "probe"] = Field(
        "batched",
        description="the judge's mode when `score` or the agent is not given one: batched (one call per sample), "
        "pair (one per sample × subgoal) or probe (one yes/no token per pair; what `goalcover local serve` "
        "suggests for a small local model, see evals/README.md)",
    )
    judge_anchors: bool = Field(False, description="add few-shot rubric anchors to the judge prompt (helps small local models)")
    judge_logprobs: int | None = Field(
        None, ge=1, le=20,
        description="ask the judge for this many top token logprobs and record a probability-weighted score "
        "(G-Eval) beside each 1-5 verdict, where the server returns logprobs; costs time on llama-cpp-python",
    )
    probe_thresholds: list[float] = Field(
        [0.125, 0.375, 0.625, 0.875], min_length=4, max_length=4,
        description="probe mode: the P(yes) cut points of the 1-5 verdict (JSON list of four, ascending)",
    )
    probe_extra_body: dict = Field(
        {}, description='probe mode: fields added to each request to constrain the answer to yes/no, JSON, e.g. '
        '{"grammar": "root ::= \\"yes\\" | \\"no\\""} (llama.cpp) or {"guided_choice": ["yes", "no"]} (vLLM)',
    )
    probe_explain_max: int = Field(200, ge=0, description="probe mode: explanations written per weak subgoal for gap analysis")
    support_threshold: int = Field(4, ge=1, le=5, description="a sample supports a subgoal at this score or above")
    support_weighted: float = Field(
        3.5, ge=1, le=5,
        description="where the judge recorded a G-Eval weighted score (logprobs), a sample supports a subgoal at "
        "this weighted score or above; the 1-5 verdict decides only where there is none",
    )
    weak_share: float = Field(0.10, ge=0, le=1, description="a subgoal is weak when fewer samples than this share support it")
    weak_relative: float = Field(
        0.5, ge=0, le=1, description="... or when its share is under this fraction of the median subgoal's share"
    )
    weak_mean: float | None = Field(None, ge=1, le=5, description="... or, if set, when its mean score is below this")
    length_bias_rho: float = Field(0.4, gt=0, le=1, description="flag a subgoal whose scores follow sample length: |Spearman rho| at least this")
    length_bias_min_samples: int = Field(20, ge=3, description="... measured on at least this many judged samples")
    agreement_poor_kappa: float = Field(0.4, ge=-1, le=1, description="flag a subgoal whose judge agrees with your checks below this quadratic-weighted kappa")
    agreement_min_labels: int = Field(5, ge=2, description="... on at least this many labels")
    off_goal_max: int = Field(2, ge=1, le=5, description="a sample is off-goal when no subgoal scores above this")
    uncovered_share: float = Field(0.02, ge=0, le=1, description="a weak subgoal supported by at most this share (or 1 sample) is uncovered")
    dedup_threshold: float = Field(0.92, gt=0, le=1, description="synthetic samples this similar (cosine) to another are dropped")
    concurrency: int = Field(8, ge=1, le=1024, description="judge calls in flight at once")
    requests_per_minute: float | None = Field(None, gt=0, description="client-side limit on model requests per minute (unset: none)")
    tokens_per_minute: float | None = Field(None, gt=0, description="client-side limit on model tokens per minute (unset: none)")
    max_retries: int = Field(6, ge=0, description="retries of a transient fault (429, 5xx, timeout), with exponential backoff")

    # Long samples (tools/judge/fit.py): the judge model's context window; longer samples are cut to fit it.
    judge_context_tokens: int = Field(
        DEFAULT_CONTEXT_TOKENS, ge=1024,
        description="the judge model's context window in tokens; a longer sample is cut in its context, never its response first",
    )

    # Ingestion
    embed_batch_size: int = Field(64, ge=1, description="texts per embedding batch")
    max_sample_chars: int = Field(
        2_000_000, ge=1, validation_alias=AliasChoices("GOALCOVER_INGEST_MAX_SAMPLE_CHARS", "GOALCOVER_MAX_SAMPLE_CHARS"),
        description="characters: samples longer than this are refused at ingest (was GOALCOVER_MAX_SAMPLE_CHARS)",
    )
    warn_sample_chars: int = Field(100_000, ge=1, description="characters: samples longer than this are ingested with a warning")
    ingest_max_expansion: float = Field(
        200, gt=0,
        description="times: a file (or folder) whose samples hold more characters than this many times its bytes on disk, past "
        "the first 256 M characters, is stopped as a compression bomb (text compresses 3-30 times)",
    )

    # One writer per workspace (tools/core/lock.py): how long a second writer waits for the first before it is refused.
    lock_wait: float = Field(10.0, ge=0, description="seconds a command waits for another one changing the workspace")
    # Bounded reading (issue 27, h27b): the chat app refuses a bigger upload before copying or reading it
    upload_max_mb: float = Field(200, gt=0, description="the chat app refuses uploaded files larger than this many MB (10^6 bytes)")

    # Logins of the chat app (ui/webauth.py; issue 27): who may log in, for how long, and where it may serve.
    ui_password: str | None = Field(None, description="one password for any user name (each user gets a workspace)")
    ui_users: str | None = Field(
        None, description='named users "alice:PW,bob:PW"; PW plain or a `goalcover ui users` hash (a password with "," or ":" needs the users file)'
    )
    ui_users_file: Path | None = Field(None, description="the users file `goalcover ui users add` writes (default WORKSPACE/.ui-users)")
    ui_login_hours: float = Field(24.0, gt=0, description="a login lasts this long; a changed user list or password ends it sooner")
    ui_allow_open: bool = Field(False, description="serve beyond loopback (--host 0.0.0.0) without a login")
    ui_host: str | None = Field(None, description="the address `goalcover ui` serves on (it sets this): typed server paths work only on loopback")

    # The cascade's thresholds (score --predict --min-precision; issue 28, h28e: tools/measure/ppi.bounded_thresholds)
    cascade_confidence: float = Field(0.9, ge=0, lt=1, description="one-sided confidence with which the cascade's "
                                      "precision and recall targets must hold (Clopper-Pearson bounds on the judged sample): "
                                      "higher sends more samples to the judge, and a small judged sample sends it everything; "
                                      "0: the point estimates on the judged sample (met about half the time)")
    cascade_round: float = Field(0.01, ge=0, le=1, description="the cascade judges its uncertain band in rounds of this "
                                 "share of the samples (at least 100), the most uncertain first, and each round's verdicts "
                                 "teach the decision predictors (tools/measure/decide.py; h28k); 0: the whole band at once")
    predict_words: bool = Field(True, description="the predictors learn from each sample's hashed words beside its "
                                "embedding (tools/measure/features.py; h28j); 0: the embedding alone")

    # Errors (h24: one error path)
    debug: bool = Field(False, description="any value but 0/false/no/off: an internal error shows its traceback instead of one line")

    @field_validator("debug", mode="before")
    @classmethod
    def _any_value_is_on(cls, value):
        if isinstance(value, str):
            return value.strip().lower() not in ("", "0", "false", "no", "off")
        return value

    @model_validator(mode="after")
    def _say_deprecated_names(self) -> "Settings":
        for old, new in DEPRECATED_NAMES.items():
            if old in os.environ and old not in _warned:
                _warned.add(old)
                warnings.warn_explicit(
                    f"{old} is deprecated and will stop working in the next release; set {new} instead",
                    FutureWarning, filename="goalcover", lineno=0, module=__name__,
                )
        return self

    @field_validator("probe_thresholds")
    @classmethod
    def _ascending_cut_points(cls, cuts: list[float]) -> list[float]:
        if not all(0 < a < b < 1 for a, b in zip(cuts, cuts[1:])) or not 0 < cuts[0] < 1:
            raise ValueError(f"four P(yes) cut points strictly between 0 and 1, ascending; got {cuts}")
        return cuts

    def model_for(self, role: Role, need_key: bool = True) -> ModelConfig:
        """The endpoint for one role, or a ConfigError naming exactly what to set. With `need_key=False`
        (plans and dry runs, which call nothing) only the model name is required."""
        model = getattr(self, f"{role}_model") or self.model
        base_url = getattr(self, f"{role}_base_url") or self.base_url
        api_key = getattr(self, f"{role}_api_key") or self.api_key
        prefix = f"GOALCOVER_{role.upper()}"
        if not model:
            raise ConfigError(
                f"No model is configured for the {role} role: set {prefix}_MODEL (or GOALCOVER_MODEL for every "
                f"role), and for a hosted API OPENAI_API_KEY (or {prefix}_API_KEY; OpenAI unless OPENAI_BASE_URL "
                f"says otherwise), or for a local server OPENAI_BASE_URL (or {prefix}_BASE_URL: vLLM, llama.cpp "
                "server, Ollama)."
            )
        if not api_key and not need_key:
            api_key = "not-needed"
        if not api_key:
            if base_url is None:
                raise ConfigError(
                    f"No API key for the {role} role: set OPENAI_API_KEY (or {prefix}_API_KEY), or point "
                    f"OPENAI_BASE_URL (or {prefix}_BASE_URL) at a local server that needs none."
                )
            api_key = "not-needed"  # local servers ignore the key, but the client insists on one
        return ModelConfig(
            role=role,
            model=model,
            base_url=base_url,
            api_key=api_key,
            timeout_s=self.llm_timeout_s,
            input_price_per_mtok=self.input_price_per_mtok,
            output_price_per_mtok=self.output_price_per_mtok,
        )


def load_settings(**overrides) -> Settings:
    """Settings from the environment, with explicit overrides (e.g. CLI flags) winning.

    An invalid variable becomes a BadInput naming it, not a pydantic traceback.
    """
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        # Named as the user sets it (the environment variable), then the shared formatter's reason.
        first = exc.errors()[0]
        variable = field_path(first["loc"]).upper()
        if not variable.startswith(("GOALCOVER_", "OPENAI_")):
            variable = f"GOALCOVER_{variable}"
        reason = describe_validation_error(exc).split(": ", 1)[-1]
        raise BadInput(f"Invalid setting {variable}: {reason}") from None
