"""Running at scale on a Ray cluster (`--engine ray`).

- `ray_engine` — scoring on Ray Data; the driver keeps the workspace.
- `ray_llm` — the `ray.data.llm` processors (HTTP endpoint or vLLM replicas).
- `ray_embed` — embeddings as Ray Data actors (`ingest --engine ray`).
"""
