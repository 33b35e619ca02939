"""How well do predictors on the embeddings learn a real judge? (`score --predict` on a small real-judge set)

bench_cascade measures the cascade against deterministic oracles (keyword rules, source categories), whose
labels a linear model on MiniLM vectors learns easily (cross-validated AUC 0.92-1.00). A real judge's
verdicts are noisier. This judges, through the engine's `score --sample N` path, the first `--limit`
contract clauses of the vendored contracts set (tests/data/sft/contracts_alpaca.jsonl) against the contracts
goal's five subgoals (evals/goals/contracts.yaml), with the judge the arguments name (by default probe mode,
with the model's calibrated P(yes) cut points where this project has them: probe.calibrated_cuts), every
sample judged, and reports per subgoal:

- the judge's positives (support as coverage decides it), the engine's predictor fitted to them
  (tools/measure/ppi.fit: 5-fold, out-of-fold AUC), whether it is no better than chance, and what it would
  save: Var(y) / Var(y − λf), the factor by which PPI++ needs fewer judged samples than the sample alone for
  the same width on a large population (every sample is judged here, so this is what it would buy);
- the same for a keyword oracle on the same samples and vectors (a regex per subgoal, as bench_cascade's
  keyword judge), and Cohen's κ between the judge's support and the keyword label.

The workspace is kept (`--workspace`, default ~/.cache/goalcover/predict_auc/<model>-<mode>-<limit>): judgments are
saved as they arrive, so a killed run continues without repeating a call.

    python -m goalcover.evals.predict_auc --gguf PATH.gguf [--limit 200] [--mode probe]
    python -m goalcover.evals.predict_auc --base-url URL --model NAME [--mode pair]
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import numpy as np

from goalcover.evals.harness import endpoint, parser, save, slug, table
from goalcover.tools.core.goal import current_goal, load_goal_file, save_goal
from goalcover.tools.data.ingest import ingest_file
from goalcover.tools.judge.judge_ref import current_judge
from goalcover.tools.judge.probe import calibrated_cuts
from goalcover.tools.measure.features import Features, words
from goalcover.tools.measure.ppi import fit, tuned_lambda
from goalcover.tools.measure.predict import judge_labels
from goalcover.tools.measure.sampled import score_sampled
from goalcover.tools.measure.strata import sample_vectors

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "sft" / "contracts_alpaca.jsonl"
GOAL_FILE = ROOT / "evals" / "goals" / "contracts.yaml"
CACHE = Path.home() / ".cache" / "goalcover" / "predict_auc"
# The keyword oracle: what a clause about each subgoal says (matched on the clause and its summary).
KEYWORDS = {
    "S1": r"terminat|suspend",
    "S2": r"liab|warrant|indemn",
    "S3": r"personal (data|information)|privacy",
    "S4": r"chang|modif|amend|revis",
    "S5": r"arbitrat|governing law|dispute|class action",
}


def kappa(a: np.ndarray, b: np.ndarray) -> float | None:
    """Cohen's κ of two boolean label arrays (scikit-learn); None where either is constant."""
    from sklearn.metrics import cohen_kappa_score

    if a.all() or not a.any() or b.all() or not b.any():
        return None
    return float(cohen_kappa_score(a, b))


def run(judge, limit: int, workspace: Path) -> dict:
    """Ingest the first `limit` contract clauses into `workspace`, judge all of them on every subgoal as a
    `--sample limit` design, and fit each subgoal's predictor to the judge's support and to the keyword
    oracle's labels, on the same vectors, and again on the vectors with the texts' words (features.Features,
    `*_words_*` keys). The judge's verdicts are kept in the report (`judge_labels`: subgoal -> sample id ->
    supports), so another predictor can be measured on them without judging again."""
    records = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()[:limit]]
    workspace.mkdir(parents=True, exist_ok=True)
    data = workspace / "contracts.jsonl"
    if not data.exists():
        data.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    cuts = calibrated_cuts(judge.model)
    with judge.open(workspace / "ws", judge_mode=judge.mode, **({"probe_thresholds": list(cuts)} if cuts else {})) as ws:
        if not ws.store.sample_hashes():
            ingest_file(ws, data)
        save_goal(ws, load_goal_file(GOAL_FILE))
        started = time.perf_counter()
        result = asyncio.run(score_sampled(ws, judge.mode, n=len(records), concurrency=judge.concurrency))
        judging = _judging(workspace, result.calls, result.failed, time.perf_counter() - started)
        by_id = {i: h for i, (h, _) in ws.store.sample_hashes().items()}
        ids = sorted(by_id)
        vectors = sample_vectors(ws, ids)
        text = {r["id"]: f"{r['instruction']}\n{r.get('input', '')}\n{r['output']}" for r in records}
        goal = current_goal(ws)
        # content hash -> subgoal id -> (supports, score), as `score --predict` trains on them
        labels = judge_labels(ws, goal, current_judge(ws), list(by_id.values()))
        x = np.stack([np.asarray(vectors[i], dtype=np.float32) for i in ids])
        x_words = Features(x, words([sample.text for sample in ws.store.samples(ids)]))  # the engine's default since h28j
        rows, kept = [], {}
        for g in goal.subgoals:
            # Only the pairs with a judgment (a call that failed twice has none): both sides on the same samples.
            keep = [k for k, i in enumerate(ids) if g.id in labels.get(by_id[i], {})]
            judge_y = np.array([labels[by_id[ids[k]]][g.id][0] for k in keep], dtype=bool)
            keyword_y = np.array([bool(re.search(KEYWORDS[g.id], text[ids[k]], re.IGNORECASE)) for k in keep], dtype=bool)
            kept[g.id] = {ids[k]: bool(v) for k, v in zip(keep, judge_y)}
            rows.append({"subgoal": g.id, "title": g.title, "samples": len(keep),
                         **_predictor("judge", x[keep], judge_y), **_predictor("keyword", x[keep], keyword_y),
                         **_predictor("judge_words", x_words[keep], judge_y),
                         **_predictor("keyword_words", x_words[keep], keyword_y),
                         "kappa_judge_keyword": None if (k := kappa(judge_y, keyword_y)) is None else round(k, 3)})
    return {**judge.describe(), "probe_thresholds": list(cuts) if cuts else None, "samples": len(records),
            "calls": result.calls, "failed": result.failed, "judging": judging, "subgoals": rows,
            "judge_labels": kept}


def _predictor(name: str, x, y: np.ndarray) -> dict:
    """`name`'s labels `y` (n,) bool and the engine's predictor fitted to them on `x` (n, d: an array or
    features.Features; ppi.fit, 5-fold): positives,
    out-of-fold AUC (None with < 5 in a class), no better than chance, and the saving of PPI++ on a large
    population, Var(y) / Var(y − λf) with f out-of-fold and λ PPI++'s tuned one: how many times fewer
    judged samples give the same interval width (1 where λ = 0)."""
    model = fit(x, y)
    lam = 0.0 if model.chance else tuned_lambda(y.astype(float), model.p_oof, 10 ** 9)
    resid = np.var(y - lam * model.p_oof, ddof=1)
    return {f"{name}_positives": int(y.sum()), f"{name}_auc": None if model.auc is None else round(model.auc, 3),
            f"{name}_chance": model.chance, f"{name}_saving": round(float(np.var(y, ddof=1) / resid), 2) if resid > 0 else None}


def _judging(workspace: Path, calls: int, failed: int, seconds: float) -> dict:
    """The judge's calls, failures and seconds over every run on `workspace` (a resumed run adds its own),
    kept in judging.json beside the workspace: a rerun that pays nothing still reports what judging cost."""
    path = workspace / "judging.json"
    got = json.loads(path.read_text()) if path.exists() else {"calls": 0, "failed": 0, "seconds": 0.0}
    if calls:
        got = {"calls": got["calls"] + calls, "failed": got["failed"] + failed, "seconds": round(got["seconds"] + seconds, 1)}
        path.write_text(json.dumps(got) + "\n")
    return got


def markdown(report: dict) -> str:
    """The report as a table."""
    def auc(r: dict, name: str) -> str:
        return f"{r[name + '_auc']}" + (" (chance)" if r[name + "_chance"] else "")

    rows = [[r["subgoal"], r["title"], r["judge_positives"], auc(r, "judge"), r["judge_saving"],
             auc(r, "judge_words") if "judge_words_auc" in r else "–", r.get("judge_words_saving", "–"), r["keyword_positives"],
             auc(r, "keyword"), r["keyword_saving"], r["kappa_judge_keyword"]] for r in report["subgoals"]]
    j = report["judging"]
    return (f"# predict_auc — {report['model']} ({report['mode']}), {report['samples']} contract clauses\n\n"
            f"judging: {j['calls']} calls, {j['failed']} failed, {j['seconds']} s (this run: {report['calls']} calls)\n\n"
            + table(["subgoal", "title", "judge: supports", "AUC", "PPI++ saving ×", "AUC with words", "saving with words ×",
                     "keyword: positives", "AUC",
                     "PPI++ saving ×", "κ judge vs keyword"], rows) + "\n")


def main(argv: list[str] | None = None) -> dict:
    """Run the experiment from the command line; writes, prints and returns the report."""
    p = parser(__doc__, 200, "contract clauses to judge (the first N of the vendored set)")
    p.set_defaults(mode="probe")
    p.add_argument("--workspace", type=Path, help="kept workspace (default ~/.cache/goalcover/predict_auc/<model>-<mode>-<limit>)")
    args = p.parse_args(argv)
    with endpoint(args) as judge:
        report = run(judge, args.limit, args.workspace or CACHE / f"{slug(judge.model)}-{judge.mode}-{args.limit}")
    save(args.out, "predict_auc", report, markdown(report), by_mode=True)
    return report


if __name__ == "__main__":
    main()
