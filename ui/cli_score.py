"""CLI commands for the goal and the judge: goal, score, report."""

from __future__ import annotations

import asyncio
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Optional

import typer

from goalcover.ui.cli_output import ProgressBar, err, open_workspace, out, print_json
from goalcover.ui.common import JsonOpt, WorkspaceOpt, handle_errors
from goalcover.ui.inert import inert


# --- goal ------------------------------------------------------------------------------------------

@handle_errors
def goal(
    text: Annotated[Optional[str], typer.Argument(help="Your goal in plain words; the agent model splits it into subgoals.", show_default=False)] = None,
    file: Annotated[
        Optional[Path],
        typer.Option("--file", "-f", help="Set the goal from YAML/JSON: `text` and `subgoals` (title, description, evidence).", show_default=False),
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set the goal and its subgoals, or show the current ones (no arguments).

    With TEXT, the agent model (GOALCOVER_AGENT_MODEL or GOALCOVER_MODEL) proposes 4–8 atomic,
    non-overlapping, checkable subgoals. Editing a subgoal later re-scores only that subgoal.
    """
    from goalcover.tools.core.goal import current_goal, decompose, goal_to_yaml, load_goal_file, save_goal

    if text and file:
        raise typer.BadParameter("give the goal as TEXT or --file, not both")
    with open_workspace(workspace) as ws:
        if file:
            new_goal = load_goal_file(file)
        elif text:
            with err.status("asking the agent model for subgoals…"):
                new_goal = asyncio.run(decompose(ws, text))
        else:
            new_goal = None
        if new_goal:
            save_goal(ws, new_goal)
        shown = new_goal or current_goal(ws)
        root = ws.root
    assert shown is not None
    if as_json:
        print_json(shown.model_dump())
        return
    out.print(goal_to_yaml(shown), highlight=False, markup=False)
    if new_goal:
        source = f"from {file}" if file else "as proposed by the agent model"
        err.print(
            f"saved the goal and {len(shown.subgoals)} subgoals ({', '.join(s.id for s in shown.subgoals)}) {source} "
            f"to the workspace {root}; `goalcover score` scores them",
            highlight=False, markup=False, soft_wrap=True,
        )


# --- score -----------------------------------------------------------------------------------------

@handle_errors
def score(
    mode: Annotated[Optional[str], typer.Option("--mode", help="batched: one call per sample scores all subgoals; pair: one call per sample × subgoal; probe: one yes/no token per sample × subgoal, P(yes) as the score, explanations written when gap analysis reads them. Default: GOALCOVER_JUDGE_MODE (batched).", show_default=False)] = None,
    concurrency: Annotated[Optional[int], typer.Option("--concurrency", "-c", min=1, help="Calls in flight at once (default GOALCOVER_CONCURRENCY, 8).", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the planned calls, tokens and cost (at batch rates with --via batch); call nothing.")] = False,
    max_cost: Annotated[Optional[float], typer.Option("--max-cost", min=0, help="Stop cleanly before spending more than this many USD (needs GOALCOVER_*_PRICE_PER_MTOK).", show_default=False)] = None,
    sample: Annotated[Optional[int], typer.Option("--sample", min=1, help="Score a stratified random sample of N samples and estimate coverage with 95% intervals.", show_default=False)] = None,
    budget: Annotated[Optional[float], typer.Option("--budget", min=0, help="Like --sample, with N as many samples as this many USD buy by the dry-run's estimate (--max-cost caps).", show_default=False)] = None,
    target_width: Annotated[Optional[float], typer.Option("--target-width", help="Keep drawing samples until every subgoal's 95% interval is narrower than W points (0-100).", show_default=False)] = None,
    via: Annotated[str, typer.Option("--via", help="live: chat completions now; batch: the OpenAI Batch API (cheaper, resumable, slower).")] = "live",
    engine: Annotated[str, typer.Option("--engine", help="local: one asyncio process; ray: Ray Data on a Ray cluster (pip install 'goalcover\\[ray]').")] = "local",
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="With --engine ray: auto (the cluster `ray start` runs here), ray://HOST:10001 or HOST:6379; default RAY_ADDRESS, else a private local Ray.", show_default=False)] = None,
    actors: Annotated[int, typer.Option("--actors", min=1, help="With --engine ray: Ray Data actors sending calls, each with --concurrency calls in flight (with --vllm: vLLM replicas, one GPU each).")] = 2,
    vllm: Annotated[Optional[str], typer.Option("--vllm", help="With --engine ray: judge with this model on vLLM replicas on GPU workers (ray.data.llm) instead of the endpoint.", show_default=False)] = None,
    ray_processor: Annotated[str, typer.Option("--ray-processor", help="With --engine ray: actors (the engine's own judge in Ray Data actors: its retries and repair rules) or http (ray.data.llm's HTTP request processor posting the same request bodies).")] = "actors",
    judges: Annotated[Optional[str], typer.Option("--judges", help="A jury: score with each of these judge models (M1,M2[,M3]; endpoints from GOALCOVER_JUDGE_BASE_URLS) and use their consensus.", show_default=False)] = None,
    predict: Annotated[bool, typer.Option("--predict", help="With --sample/--budget/--target-width: learn per subgoal a predictor of the judge from the embeddings and words, predict every sample and give prediction-powered intervals (see docs/predict.md).")] = False,
    active: Annotated[bool, typer.Option("--active", help="With --predict --target-width: draw later rounds by the predictors' uncertainty (active inference) instead of at random; on bench_cascade it needed more calls than random rounds (evals/README.md).")] = False,
    min_precision: Annotated[Optional[float], typer.Option("--min-precision", help="With --predict: decide every sample by a cascade (predictor where confident, the judge in the uncertain band) at this precision, e.g. 0.9.", show_default=False)] = None,
    min_recall: Annotated[Optional[float], typer.Option("--min-recall", help="With --min-precision: the cascade's recall target (default: the precision target), e.g. 0.8.", show_default=False)] = None,
    order_check: Annotated[int, typer.Option("--order-check", min=0, help="Batched mode: then re-score N random samples with the subgoals shuffled and report the share of verdicts that change (N calls).")] = 0,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score every sample against every subgoal with the LLM judge (GOALCOVER_JUDGE_MODEL or GOALCOVER_MODEL).

    Each judgment is saved the moment it arrives: interrupt at any time (Ctrl-C, a crash, a kill) and run
    again to finish without paying twice. Only missing pairs are scored — new samples, edited subgoals,
    and judgments that failed before. With --sample, --budget or --target-width only a stratified random
    sample is scored and coverage is estimated with intervals; a later full run reuses every judgment.

    --engine ray sends the calls through Ray Data on a Ray cluster; the workspace stays here and each
    block of calls is saved as it finishes; with --sample/--budget and --predict it predicts on Ray Data
    too (see docs/ray.md).
    """
    from goalcover.tools.judge import scoring
    from goalcover.tools.judge.judge_ref import JudgeRef
    from goalcover.tools.core.errors import BadInput

    from goalcover.tools.core.settings import load_settings

    mode = mode or load_settings().judge_mode
    scoring.check_mode(mode)
    if via not in ("live", "batch"):
        raise typer.BadParameter(f"--via {via!r}: choose live or batch")
    if sample is not None and budget is not None:
        raise typer.BadParameter("give --sample or --budget, not both")
    if engine not in ("local", "ray"):
        raise BadInput(f"--engine {engine!r}: choose local or ray")
    if engine == "local" and (ray_address or vllm or actors != 2 or ray_processor != "actors"):
        raise BadInput("--ray-address, --actors, --ray-processor and --vllm need --engine ray")
    if engine == "ray" and (max_cost is not None or via != "live" or ((sample or budget is not None) and not predict)
                            or target_width is not None or judges):
        raise BadInput("--engine ray scores every missing pair live with one judge: leave out --max-cost, --via batch, "
                       "--target-width and --judges, and give --sample / --budget only with --predict (see the cost first with --dry-run)")
    if active and not (predict and target_width is not None):
        raise BadInput("--active draws later rounds by the predictors' uncertainty: give it with --predict and --target-width")
    if engine == "ray" and mode == "probe":
        raise BadInput("--mode probe runs on the local engine only: leave out --engine ray, or use --mode batched or pair")
    with open_workspace(workspace) as ws, ExitStack() as stack:
        factor = ws.settings.batch_price_factor if via == "batch" else 1.0
        judge = None if judges and not dry_run else JudgeRef.resolve(ws.settings, mode)  # once; a jury's below
        if dry_run:
            from goalcover.tools.core.plans import sampled_plan, scoring_plan

            if budget is not None:
                from goalcover.tools.measure.sampled import sample_for_budget

                sample = sample_for_budget(ws, budget, judge, factor)
            if as_json:
                plan, _, _ = scoring.plan(ws, judge)
                plan.est_cost *= factor
                if sample is not None:
                    plan = sampled_plan(plan, sample)
                print_json({**plan.model_dump(), "via": via, **({"sample": sample} if sample is not None else {})})
                return
            shown = scoring_plan(ws, judge, max_cost, via, sample)
            out.print(shown.text(), highlight=False, markup=False)
            for what, value in shown.rows:
                out.print(f"  {what}: {value}", highlight=False, markup=False)
            return
        if max_cost is not None and ws.settings.input_price_per_mtok == ws.settings.output_price_per_mtok == 0:
            err.print("[yellow]warning:[/] --max-cost needs prices: set GOALCOVER_INPUT_PRICE_PER_MTOK and GOALCOVER_OUTPUT_PRICE_PER_MTOK")
        scorer = scoring.score
        if via == "batch":
            from goalcover.tools.judge.batch import score_batch

            scorer = score_batch
        sampled = sample is not None or budget is not None or target_width is not None
        predict_all = None
        if engine == "ray" and predict and sampled:  # judge the sample and the band on Ray, predict on Ray Data
            from goalcover.tools.scale.ray_predict import RayPredict, ray_scorer

            scorer = ray_scorer(ray_address, actors, ray_processor, vllm)
            predict_all = stack.enter_context(RayPredict(ray_address))
        if (predict or min_precision is not None or min_recall is not None) and (not sampled or not predict):
            raise BadInput("--predict learns from a judged sample: give it with --sample N, --budget or --target-width "
                           "(and --min-precision / --min-recall only with --predict)")
        if min_recall is not None and min_precision is None:
            raise BadInput("--min-recall sets the cascade's recall target: give it with --min-precision")
        for flag, value in (("--min-precision", min_precision), ("--min-recall", min_recall)):
            if value is not None and not 0.5 < value < 1:  # checked before anything is judged
                raise BadInput(f"{flag} {value:g}: give a value between 0.5 and 1 (e.g. 0.9)")
        jurors = None
        if judges:
            from goalcover.tools.judge.jury import parse_judges, score_jury

            jurors = parse_judges(judges)
            if sampled or via == "batch":
                raise BadInput("--judges scores everything live: leave out --sample/--budget/--target-width and --via batch")
            judge = JudgeRef.resolve(ws.settings, mode, jurors=jurors)
        assert judge is not None
        with ProgressBar("scoring", fields=("batch", "failed") if via == "batch" else ("cost", "failed")) as bar:
            if engine == "ray" and not sampled:
                from goalcover.tools.scale.ray_engine import score_on_ray

                result = score_on_ray(ws, judge, address=ray_address, actors=actors, concurrency=concurrency,
                                      vllm_model=vllm, processor=ray_processor, progress=bar)
            elif sampled:
                from goalcover.tools.measure.sampled import sample_for_budget, score_sampled

                if budget is not None:
                    # The budget picks N from the estimate; --max-cost is the hard cap where one is wanted. With
                    # --target-width, which would draw past N, the budget caps the rounds too.
                    sample = sample_for_budget(ws, budget, judge, factor)
                    if target_width is not None:
                        max_cost = budget if max_cost is None else min(max_cost, budget)
                if active:  # later rounds drawn by the predictors' uncertainty
                    from goalcover.tools.measure.active import score_active

                    result, _ = asyncio.run(score_active(ws, judge.mode, n=sample, target_width=target_width, max_cost=max_cost,
                                                         scorer=scorer, concurrency=concurrency, progress=bar))
                else:  # random rounds; with --predict they stop on the prediction-powered widths
                    result = asyncio.run(score_sampled(ws, judge, n=sample, target_width=target_width, max_cost=max_cost,
                                                       scorer=scorer, concurrency=concurrency, progress=bar,
                                                       width_of=_predicted_width(ws) if predict and target_width is not None else None))
            elif jurors:
                result, juror_runs = asyncio.run(score_jury(ws, judge, concurrency=concurrency, max_cost=max_cost, progress=bar))
            else:
                result = asyncio.run(scorer(ws, judge, concurrency=concurrency, max_cost=max_cost, progress=bar))
        predicted = band = None
        if predict:
            from goalcover.tools.measure.predict import cascade as run_cascade, predict as fit_predict

            if min_precision is not None:
                with ProgressBar("cascade", fields=("cost", "failed")) as bar:
                    band, predicted = asyncio.run(run_cascade(ws, judge.mode, min_precision, scorer=scorer, min_recall=min_recall,
                                                              predict_all=predict_all, concurrency=concurrency, progress=bar))
            else:
                predicted = fit_predict(ws, predict_all=predict_all)
        with ProgressBar("indexing") as bar:
            scoring.index_scores(ws, progress=bar)
        checked = None
        if order_check and mode == "batched":
            from goalcover.tools.judge.order_check import order_check as run_order_check

            with err.status(f"order check: re-scoring {order_check} samples with the subgoals shuffled…"):
                checked = asyncio.run(run_order_check(ws, order_check))
        elif order_check:
            err.print("--order-check measures batched mode's order effect; skipped in pair mode", highlight=False)
    if as_json:
        extra = {"order_check": checked.model_dump()} if checked else {}
        if jurors:
            extra["jury"] = [r.model_dump() for r in juror_runs]
        if predicted:
            extra["predict"] = {**predicted.model_dump(), "band_calls": band.calls if band else 0,
                                **({"ray_jobs": predict_all.jobs} if predict_all is not None else {})}
        print_json({**result.to_json(), **extra})
        return
    if checked:
        out.print(f"order check: {checked.changed} of {checked.verdicts} verdicts changed with the subgoals shuffled "
                  f"(consistency {checked.consistency:.0%}, {checked.samples} calls)", highlight=False)
    out.print(
        f"{result.judgments} judgments ({result.new} new, {result.cached} cached, {result.failed} failed) · "
        f"{result.calls} calls{' (batch)' if via == 'batch' else ''} · "
        f"{result.prompt_tokens + result.completion_tokens:,} tokens · ${result.cost:.4f} · {result.elapsed_s:.1f} s",
        highlight=False,
    )
    if result.estimate:
        est = result.estimate
        out.print(f"estimated from {est.samples:,} of {est.population:,} samples (stratified, 95% intervals):", highlight=False)
        for row in est.subgoals:
            out.print(
                f"  {row.id}: {row.share:.1%} supporting ({row.ci_low:.1%}–{row.ci_high:.1%}) · "
                f"P(weak) {row.p_weak:.0%}",
                highlight=False,
            )
        out.print("`goalcover score` without --sample scores the rest and reuses every judgment made", highlight=False)
    if predicted:
        from goalcover.ui.cli_predict import print_predicted

        print_predicted(predicted, band)
    if result.stopped:
        out.print(f"stopped early: {result.stopped}; run again (with a higher --max-cost) to continue", highlight=False)
    if result.failed:
        out.print("failed judgments are listed in `goalcover report` and retried by the next `goalcover score`", highlight=False)


def _predicted_width(ws):
    """`width_of` for score_sampled's random rounds under --predict: the widest prediction-powered interval
    in points (0-100), the predictors refitted on every round's judged sample (predict.predict). Random
    rounds with cross-fitted PPI++ needed fewer calls than active rounds on bench_cascade (10⁴ keyword, 30
    runs: 1,112 vs 1,415 mean; evals/README.md), so they are the default and --active the option."""
    from goalcover.tools.measure.predict import predict as fit_predict

    return lambda _estimate: fit_predict(ws).widest()


# --- report ----------------------------------------------------------------------------------------

@handle_errors
def report(
    format: Annotated[str, typer.Option("--format", help="md, html (one self-contained file with charts) or json.")] = "md",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write to this file (html defaults to WORKSPACE/reports/coverage.html).", show_default=False)] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show coverage per subgoal, as Markdown, JSON or an HTML page with charts.

    Per subgoal: supporting samples, share, mean score, histogram and a weak flag; then off-goal samples,
    failed judgments, and coverage with accepted synthetic samples next to before.
    """
    from goalcover.tools.measure.coverage import coverage
    from goalcover.tools.measure.report import render

    fmt = "json" if as_json else format
    if fmt not in ("md", "html", "json"):
        raise typer.BadParameter(f"--format {format!r}: choose md, html or json")
    with open_workspace(workspace) as ws:
        if fmt == "html" and output is None:
            output = ws.reports_dir / "coverage.html"
        if output is not None:  # never over the dataset, a pool file or the workspace's own files (issue 27, F10)
            from goalcover.tools.data.output_guard import check_output

            output = check_output(ws, output, "report")
        text = render(coverage(ws), fmt)  # type: ignore[arg-type]
    if output is None:
        text = inert(text, markup=False)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    from goalcover.tools.core.files import write_atomic

    write_atomic(output, text)
    err.print(f"wrote {output}", highlight=False)
