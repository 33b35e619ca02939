"""What every experiment shares: the model arguments, a llama.cpp server when asked for one, workspaces
that all talk to one judge, the statistics, and the results files (JSON plus a Markdown table).

Experiments keep a pure `run(judge, ...) -> dict` (what the tests call, against the fake endpoint) and a
`main(argv)` that parses arguments, starts the endpoint, runs, prints the table and writes
`evals/results/<experiment>-<model>.json` and `.md`.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from goalcover.tools.core.errors import GoalCoverError
from goalcover.tools.core.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
SFT = ROOT / "tests" / "data" / "sft"  # vendored real datasets (tests/data/README.md)
GOALS = ROOT / "evals" / "goals"
RESULTS = ROOT / "evals" / "results"
# judge_separation uses 8091; another port lets both run on one machine.
LOCAL_PORT = 8092


@dataclass(frozen=True)
class Judge:
    """Where every call of an experiment goes, and how it is made."""

    model: str
    base_url: str | None = None
    mode: str = "batched"
    concurrency: int = 4
    anchors: bool = False
    timeout_s: float = 120.0
    max_retries: int | None = None
    json_mode: str | None = None
    logprobs: int | None = None

    def open(self, path: Path, **overrides) -> Workspace:
        """A workspace whose judge, agent and synth roles all use this model. The API key comes from
        OPENAI_API_KEY; a base URL without one (a local server, the fake) needs none."""
        return Workspace.open(
            path,
            model=self.model,
            base_url=self.base_url,
            concurrency=self.concurrency,
            llm_timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            judge_anchors=self.anchors or None,
            json_mode=self.json_mode,
            judge_logprobs=self.logprobs,
            **overrides,
        )

    def describe(self) -> dict:
        """The judge's identity for a report: model, mode, anchors, logprobs."""
        return {"model": self.model, "mode": self.mode, "anchors": self.anchors, "logprobs": self.logprobs}


def parser(doc: str, limit: int, limit_help: str) -> argparse.ArgumentParser:
    """The command line every experiment shares (model, endpoint, mode, anchors, logprobs, `--limit`)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="local", help="model name the endpoint serves (default: the GGUF file's name)")
    p.add_argument("--base-url", help="an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1 (key: OPENAI_API_KEY)")
    p.add_argument("--gguf", type=Path, help="start llama.cpp's server on this model file and use it")
    p.add_argument("--port", type=int, default=LOCAL_PORT, help="port for --gguf's server")
    p.add_argument("--limit", type=int, default=limit, help=limit_help)
    p.add_argument("--mode", choices=["batched", "pair", "probe"], default="batched", help="judge mode")
    p.add_argument("--concurrency", type=int, help="judge calls in flight (default 4; 1 with --gguf)")
    p.add_argument("--anchors", action="store_true", help="few-shot rubric anchors in the judge prompt")
    p.add_argument("--logprobs", type=int, metavar="K",
                   help="ask the judge for the top K token logprobs (1-20) and report G-Eval weighted scores too")
    p.add_argument("--out", type=Path, default=RESULTS, help="folder for the results files")
    return p


@contextmanager
def endpoint(args: argparse.Namespace) -> Iterator[Judge]:
    """The judge the arguments name; with --gguf, a llama.cpp server that lives as long as the block."""
    if not args.gguf and not args.base_url and args.model == "local":
        raise SystemExit("name an endpoint: --gguf FILE, or --model NAME [--base-url URL] (key in OPENAI_API_KEY)")
    proc = None
    base_url, model, local = args.base_url, args.model, False
    try:
        if args.gguf:
            from goalcover.tools.judge.local import serve

            proc = serve(args.gguf, port=args.port)
            base_url, model, local = f"http://127.0.0.1:{args.port}/v1", args.gguf.stem, True
        # A CPU server answers one request at a time and slowly: no point queueing, and wait long.
        yield Judge(
            model=model,
            base_url=base_url,
            mode=args.mode,
            concurrency=args.concurrency or (1 if local else 4),
            anchors=args.anchors,
            timeout_s=600.0 if local else 120.0,
            max_retries=2 if local else None,
            # llama-cpp-python answers json_schema with a 500; skip that round trip in every workspace.
            json_mode="json_object" if local else None,
            logprobs=getattr(args, "logprobs", None),
        )
    except GoalCoverError as exc:  # a bad model file, a taken port, no model configured: one line, no traceback
        raise SystemExit(f"error: {exc}") from None
    finally:
        if proc is not None:
            from goalcover.tools.judge.local import stop

            stop(proc)


def slug(model: str) -> str:
    """`model` as a file-name-safe string."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model)


def save(out: Path, experiment: str, report: dict, markdown: str, by_mode: bool = False) -> tuple[Path, Path]:
    """Write `<experiment>-<model>[-anchors].json` and `.md`; print the table. With `by_mode` the judge's
    mode (when not batched) and `-logprobs` join the name, so runs of one model in several modes keep
    their own files."""
    out.mkdir(parents=True, exist_ok=True)
    mode = report.get("mode") if by_mode else None
    name = (f"{experiment}-{slug(report['model'])}{f'-{mode}' if mode and mode != 'batched' else ''}"
            f"{'-anchors' if report.get('anchors') else ''}{'-logprobs' if by_mode and report.get('logprobs') else ''}")
    json_path, md_path = out / f"{name}.json", out / f"{name}.md"
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    md_path.write_text(markdown + "\n")
    print(markdown)
    print(f"\nwrote {json_path} and {md_path}", file=sys.stderr)
    return json_path, md_path


def read_jsonl(path: Path) -> list[dict]:
    """Records of a JSONL file. (Not `splitlines()`: it also splits at U+2028 inside a JSON string.)"""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    """Write `records` as JSON lines to `path` (creating its folder); returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def log(message: str) -> None:
    """A progress line on stderr."""
    print(message, file=sys.stderr, flush=True)


# --- numbers ----------------------------------------------------------------------------------------

def mean(values: Sequence[float]) -> float | None:
    """The mean of `values`, None when empty."""
    return statistics.fmean(values) if values else None


def relative_drop(before: Sequence[float], after: Sequence[float]) -> float | None:
    """(mean before - mean after) / mean before: 0.25 is a 25% lower mean score."""
    b, a = mean(before), mean(after)
    return None if b is None or a is None or b == 0 else (b - a) / b


def cohens_d(a: Sequence[float], b: Sequence[float]) -> float | None:
    """(mean a - mean b) / pooled standard deviation. None when undefined (a group under 2 values, or no
    spread at all); +-inf when the means differ but neither group varies."""
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = statistics.variance(a), statistics.variance(b)
    pooled = math.sqrt(((len(a) - 1) * va + (len(b) - 1) * vb) / (len(a) + len(b) - 2))
    diff = statistics.fmean(a) - statistics.fmean(b)
    if pooled == 0:
        return None if diff == 0 else math.copysign(math.inf, diff)
    return diff / pooled


def rounded(value: float | None, digits: int = 3) -> float | str | None:
    """JSON-safe: None stays None, infinities become strings."""
    if value is None:
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return round(value, digits)


def pct(value: float | None) -> str:
    """A share as a percentage with one decimal ("–" for None)."""
    return "–" if value is None else f"{100 * value:.1f}%"


def num(value: float | str | None, digits: int = 2) -> str:
    """A number with `digits` decimals ("–" for None, ∞ for "inf")."""
    if value is None:
        return "–"
    if isinstance(value, str):
        return "∞" if value == "inf" else "−∞" if value == "-inf" else value
    return f"{value:.{digits}f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table of `rows` under `headers` (pipes in cells escaped)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)
