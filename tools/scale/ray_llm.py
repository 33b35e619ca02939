"""The `ray.data.llm` processors behind `goalcover score --engine ray`: the HTTP request processor
(`--ray-processor http`, any OpenAI-compatible endpoint) and the vLLM engine processor (`--vllm MODEL`,
vLLM replicas on GPU workers).

Both take the driver's rows (`ray_engine.task_row` / `http_row`) and produce the columns the actor
processor produces ("i", "raw", "error", "logprobs", "calls", "prompt_tokens", "completion_tokens",
"repaired", "repair_calls", "cost"), so the driver commits their results the same way
(`ray_engine.result_of`, `scoring.judgment_rows`). Neither has the repair round trip or the local
engine's full retry rules: a reply that does not parse is recorded as failed and retried by the next run.

Sources: Ray Data "Working with LLMs" (docs.ray.io 2.60): `HttpRequestProcessorConfig`,
`vLLMEngineProcessorConfig`, `build_processor`; ray/llm/_internal/batch/stages/http_request_stage.py.
"""

from __future__ import annotations

import json
import math
from typing import Any

from goalcover.tools.core.errors import ConfigError
from goalcover.tools.judge.scoring import Mode
from goalcover.tools.core.settings import ModelConfig, Settings


def _llm():
    try:
        import ray.data.llm as llm
    except ImportError as exc:
        raise ConfigError(f"this processor needs ray.data.llm (pip install 'goalcover[ray]'): {exc}") from None
    return llm


def completion_columns(index: int, data: Any, config: ModelConfig) -> dict[str, Any]:
    """One chat-completion JSON (as the endpoint returned it) as the processor columns: the reply text,
    its token counts and USD at the judge's prices, logprobs (JSON), or the endpoint's error message."""
    base = {"i": int(index), "raw": "", "error": "", "logprobs": "", "calls": 1, "prompt_tokens": 0,
            "completion_tokens": 0, "repaired": 0, "repair_calls": 0, "cost": 0.0}
    try:
        choice = data["choices"][0]
        content = choice["message"].get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        error = data.get("error") if isinstance(data, dict) else None
        message = error.get("message") if isinstance(error, dict) else error
        return base | {"error": f"the endpoint answered without a completion: {message or json.dumps(data)[:300]}"}
    usage = data.get("usage") or {}
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    logprobs = (choice.get("logprobs") or {}).get("content")
    return base | {"raw": content, "prompt_tokens": prompt, "completion_tokens": completion,
                   "cost": config.cost(prompt, completion), "logprobs": json.dumps(logprobs) if logprobs else ""}


def http_dataset(ray, rows: list[dict], config: ModelConfig, settings: Settings, actors: int, block_size: int):
    """The pipeline of `ray.data.llm.HttpRequestProcessorConfig`: `actors` HTTP actors POST each row's
    prepared body (`scoring.judge_request`, so prompts, schemas and bounds are the local engine's) to the
    judge's `/chat/completions` with its key, retrying 408/429/502-504 and dropped connections up to
    GOALCOVER_MAX_RETRIES times. In Ray 2.60 the processor awaits a batch's requests one after another
    (Ray Data runs several batches per actor at once), and a row whose retries run out, or whose reply is
    not JSON, fails the job: committed blocks stay, the rerun sends the rest."""
    llm = _llm()
    url = (config.base_url or "https://api.openai.com/v1").rstrip("/") + "/chat/completions"
    processor = llm.build_processor(
        llm.HttpRequestProcessorConfig(
            url=url, headers={"Authorization": f"Bearer {config.api_key}"}, batch_size=block_size,
            concurrency=actors, max_retries=settings.max_retries, base_retry_wait_time_in_s=0.5,
        ),
        preprocess=lambda row: {"i": row["i"], "payload": json.loads(row["request"])},
        postprocess=lambda row: completion_columns(row["i"], row["http_response"], config),
    )
    blocks = max(1, math.ceil(len(rows) / block_size))
    return processor(ray.data.from_items(rows, override_num_blocks=blocks))


def vllm_dataset(ray, rows: list[dict], model: str, mode: Mode, settings: Settings, replicas: int, block_size: int):
    """The Ray Data pipeline of the vLLM processor (`ray.data.llm.vLLMEngineProcessorConfig`): `replicas`
    vLLM engines, one GPU each, generating the judge's JSON under guided decoding with the same messages
    and reply bound (sampling_params `structured_outputs`, Ray 2.60 / vLLM >= 0.10 naming). Output rows
    carry the actor processor's columns (usage from vLLM's token counts; calls = 1 per row). An engine
    error fails the job (the processor's default): the blocks already committed stay, the rerun sends the
    rest. Not smoke-tested here (no GPU); needs `vllm` on the GPU workers and the model reachable from
    them. Raises ConfigError when ray.data.llm cannot be imported."""
    llm = _llm()
    from goalcover.tools.judge.scoring import VERDICT_SCHEMA, batched_schema

    def preprocess(row: dict) -> dict:
        request = json.loads(row["request"])
        schema = batched_schema(tuple(request["ids"]))[1] if mode == "batched" else VERDICT_SCHEMA
        return {
            "i": row["i"],
            "messages": request["messages"],
            "sampling_params": {"temperature": 0.0, "max_tokens": request["max_tokens"],
                                "structured_outputs": {"json": schema}},
        }

    def postprocess(row: dict) -> dict:
        prompt_tokens = row.get("num_input_tokens") or 0
        completion_tokens = row.get("num_generated_tokens") or 0
        return {"i": row["i"], "raw": row.get("generated_text") or "", "error": "", "logprobs": "",
                "calls": 1, "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                "repaired": 0, "repair_calls": 0, "cost": 0.0}

    processor = llm.build_processor(
        llm.vLLMEngineProcessorConfig(model_source=model, concurrency=replicas, batch_size=block_size,
                                  engine_kwargs={"max_model_len": 8192}),
        preprocess=preprocess,
        postprocess=postprocess,
    )
    blocks = max(1, math.ceil(len(rows) / block_size))
    return processor(ray.data.from_items(rows, override_num_blocks=blocks))
