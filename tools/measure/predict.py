"""`score --predict`: after a judged stratified sample, learn per subgoal (and for "off-goal") a predictor of
the judge's verdict from the samples' stored embeddings and their words (features.py), predict every sample,
give each subgoal's share a prediction-powered interval, and — with a target precision — decide every sample
by a cascade: the predictor where it is confident, the judge in the uncertain band.

The statistics are in ppi.py; the tables in predict_store.py. Only the design's random sample trains the
interval's predictors and enters the intervals (samples judged because the cascade sent them are not a
random sample), so a rerun refits none of them and pays nothing. The cascade's decisions come from decision
predictors (decide.py) that every judgment teaches, the band's included, with thresholds from the random
sample alone; they are refitted on each call with a precision target (CPU only: no judge call).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable

import numpy as np
from pydantic import BaseModel, Field

from goalcover.tools.measure import active as active_rounds, decide, predict_store
from goalcover.tools.measure.coverage import supports
from goalcover.tools.core.errors import BadInput
from goalcover.tools.core.goal import current_goal
from goalcover.tools.measure.ppi import THRESHOLD_CONFIDENCE, Predictor, Stratum, bounded_thresholds, cascade_quality, fit, fit_regressor, ppi_share, thresholds, weak_quality
from goalcover.tools.judge.judge_ref import JudgeRef, current_judge
from goalcover.tools.measure.features import FeatureTable, feature_table, features_key
from goalcover.tools.measure.strata import SampleDesign, current_design
from goalcover.tools.core.workspace import Workspace

OFF_GOAL = "off_goal"


class TargetPrediction(BaseModel):
    """One target's predictor (a subgoal, or `off_goal`: no subgoal scores above the off-goal threshold)."""

    id: str
    judged: int = Field(description="drawn samples with a judgment, the predictor's training set")
    positives: int
    auc: float | None = Field(description="cross-validated (out-of-fold) ROC AUC; None when a class has < 5 samples")
    precision: float | None = Field(description="out-of-fold precision at P >= 0.5")
    recall: float | None = Field(description="out-of-fold recall at P >= 0.5")
    brier: float | None = Field(None, description="out-of-fold Brier score (calibration + sharpness; lower is better)")
    chance: bool = Field(description="no better than chance: the share falls back to the sample-only estimate and the predictor decides nothing")
    predicted: bool = Field(description="share and interval are prediction-powered (PPI++), not the sample-only estimate")
    share: float
    ci_low: float
    ci_high: float
    sample_ci_low: float = Field(description="the sample-only 95% interval, for comparison")
    sample_ci_high: float
    lam: float = Field(description="PPI++ power-tuning λ (0: the judged sample alone, 1: plain PPI)")
    t_low: float | None = Field(None, description="cascade: P <= t_low is decided 'no' by the predictor")
    t_high: float | None = Field(None, description="cascade: P >= t_high is decided 'yes' by the predictor")
    est_precision: float | None = Field(None, description="cascade's estimated precision of 'yes', on the judged sample (out-of-fold)")
    est_recall: float | None = Field(None, description="cascade's estimated recall of 'yes', on the judged sample (out-of-fold)")
    est_precision_weak: float | None = Field(None, description="cascade's estimated precision of 'no' (weak: gap analysis reads these), on the judged sample")
    est_recall_weak: float | None = Field(None, description="cascade's estimated recall of 'no' (weak), on the judged sample (out-of-fold)")
    decided: dict[str, int] = Field(default_factory=dict, description="sample contents decided by 'judge', 'predictor', or 'pending' (for the judge)")
    active_draws: int = Field(0, description="samples drawn by the predictor's uncertainty after the first round (active.py), reweighted in the interval")


class PredictResult(BaseModel):
    """`score --json`'s "predict": the population, the judged sample, the precision target and one row per
    target (subgoals, then off_goal)."""

    population: int
    judged_samples: int
    min_precision: float | None
    min_recall: float | None = Field(None, description="the cascade's recall target (--min-recall); None: the precision target is used")
    refit: bool = Field(description="False when every predictor was reused (nothing new judged)")
    targets: list[TargetPrediction]
    features: str = Field("embedding+words", description="what the predictors learn from: embedding+words, or "
                          "embedding (GOALCOVER_PREDICT_WORDS=0)")
    fit_s: float = 0.0
    predict_s: float = 0.0
    band_rounds: int = Field(0, description="rounds in which the cascade sent its band to the judge (predict.cascade)")
    decide_s: float = Field(0.0, description="seconds fitting and predicting the cascade's decision predictors (decide.py)")
    band_order: list[str] = Field(default_factory=list, exclude=True,
                                  description="content hashes pending on any target, the most uncertain first (cascade's rounds)")

    def widest(self) -> float:
        """The widest subgoal interval in points (0-100), prediction-powered where the predictor helps."""
        rows = [t for t in self.targets if t.id != OFF_GOAL]
        return max((t.ci_high - t.ci_low) * 100 for t in rows) if rows else 0.0

    def pending(self) -> int:
        """Sample contents the cascade still sends to the judge (any target's band)."""
        return sum(t.decided.get("pending", 0) for t in self.targets if not t.chance)


def _target_hash(goal) -> dict[str, str]:
    off = hashlib.sha256(("off_goal|" + "|".join(sorted(g.hash for g in goal.subgoals))).encode()).hexdigest()[:16]
    return {**{g.id: g.hash for g in goal.subgoals}, OFF_GOAL: off}


def judge_labels(ws: Workspace, goal, judge: JudgeRef, hashes: list[str]) -> dict[str, dict[str, tuple[bool, float]]]:
    """content hash -> target id -> (label: supports as coverage decides it, coverage.supports; score for the
    regressor) from the judge's stored judgments; off_goal only where every subgoal is judged; and per subgoal
    `id + decide.RELEVANT` -> (score above off_goal_max, score), the off-goal decisions' relevance labels."""
    settings = ws.settings
    judged = ws.store.judgments_among(*judge.key, hashes)
    out: dict[str, dict[str, tuple[bool, float]]] = defaultdict(dict)
    for h in dict.fromkeys(hashes):
        scores = []
        for g in goal.subgoals:
            got = judged.get((h, g.hash))
            if got is None:
                continue
            score, _, weighted = got
            out[h][g.id] = (supports(score, weighted, settings), weighted if weighted is not None else float(score))
            out[h][g.id + decide.RELEVANT] = (score > settings.off_goal_max, float(score))
            scores.append(score)
        if len(scores) == len(goal.subgoals) and scores:
            out[h][OFF_GOAL] = (max(scores) <= settings.off_goal_max, float(max(scores)))
    return out


def predict(ws: Workspace, min_precision: float | None = None, seed: int = 0,
            vectors: dict[str, np.ndarray] | None = None, min_recall: float | None = None,
            predict_all: Callable | None = None, table: FeatureTable | None = None) -> PredictResult:
    """Fit (or reuse) every target's predictor on the design's judged sample, store P for every sample
    content, compute each subgoal's interval and, with `min_precision` (0.5-1), the cascade's thresholds and
    decisions; `min_recall` (0.5-1, default `min_precision`) sets the recall target of the "does not" side
    separately. `vectors` (sample id -> unit vector) skips reading the index (benchmarks); `table`, the
    samples' features.feature_table from an earlier call (the cascade's rounds), skips reading them. `predict_all`
    (Predictor, regressor or None, vectors (m, d)) -> (P (m,), scores (m,) or None) predicts every sample
    (default: here, predict_local; scale.ray_predict.RayPredict: on Ray Data). Raises BadInput
    without a goal, a judge or a saved sample design, for a precision or recall outside (0.5, 1), or for a
    recall target without a precision target."""
    if min_precision is not None and not 0.5 < min_precision < 1:
        raise BadInput(f"--min-precision {min_precision:g}: give a precision between 0.5 and 1 (e.g. 0.9)")
    if min_recall is not None and not 0.5 < min_recall < 1:
        raise BadInput(f"--min-recall {min_recall:g}: give a recall between 0.5 and 1 (e.g. 0.8)")
    if min_recall is not None and min_precision is None:
        raise BadInput("--min-recall sets the cascade's recall target: give it with --min-precision")
    goal = current_goal(ws)
    judge = current_judge(ws)
    design = current_design(ws)
    if goal is None or judge is None or design is None:
        raise BadInput("--predict learns from a judged random sample: run `goalcover score --sample N --predict` "
                       "(or --budget / --target-width)")
    version, model = judge.key
    by_id = {i: h for i, (h, _) in ws.store.sample_hashes().items()}
    distinct = list(dict.fromkeys(by_id[i] for i in sorted(by_id)))
    drawn = [i for i in design.drawn_ids() if i in by_id]
    labels = judge_labels(ws, goal, judge, list(by_id.values()))
    hashes = _target_hash(goal)
    fit_s = predict_s = 0.0
    refit = False
    rows: list[TargetPrediction] = []
    active = active_rounds.load(ws, _design_key(design), judge)  # later rounds drawn by uncertainty
    rest = active_rounds.rest_ids(ws, design) if active else []
    deciding: dict[str, decide.DecisionScores] = {}
    decide_s, decide_key, decide_fitted = 0.0, "", False
    if min_precision is not None:  # the cascade's own predictors, taught by every judgment (decide.py)
        started = time.perf_counter()
        subgoals = [g.id for g in goal.subgoals]
        decide_key = decide.fingerprint(subgoals, OFF_GOAL, by_id, drawn, labels, seed, features_key(ws))
        deciding = decide.stored(ws, {t: hashes[t] for t in [*subgoals, OFF_GOAL]}, judge.key, decide_key, distinct)
        decide_fitted = deciding is None
        if decide_fitted:
            if table is None:  # every distinct content's features, read once per call (or passed by the cascade)
                table = feature_table(ws, by_id, vectors)
            deciding = decide.decision_scores(table, subgoals, OFF_GOAL, by_id, drawn, labels, seed,
                                              lambda model, rows: (predict_all or predict_local)(model, None, rows)[0])
        decide_s = time.perf_counter() - started
    band_unc: dict[str, float] = {}
    for target, target_hash in hashes.items():
        train = [i for i in drawn if target in labels.get(by_id[i], {})]
        y = np.array([labels[by_id[i]][target][0] for i in train], dtype=bool)
        fingerprint = target_hash + features_key(ws) + "|" + ",".join(f"{by_id[i]}:{int(v)}" for i, v in zip(train, y))
        trained = hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
        stored = predict_store.predictor(ws, target_hash, version, model)
        reuse = stored is not None and stored[0] == trained and predict_store.count(ws, target_hash, version, model, trained) == len(distinct)
        if reuse:
            detail = stored[1]
            kept = predict_store.predictions(ws, target_hash, version, model)
            p_by_hash = {h: v[0] for h, v in kept.items()}
            p_oof = np.array(detail["p_oof"])
            chance = detail["chance"]
            quality = {k: detail.get(k) for k in ("auc", "precision", "recall", "brier")}
            positives = detail["positives"]
        else:
            refit = True
            if table is None:
                table = feature_table(ws, by_id, vectors)
            x_train = table.rows([by_id[i] for i in train])
            started = time.perf_counter()
            model_fit: Predictor = fit(x_train, y, seed) if len(train) else fit(np.zeros((1, table.dim)), np.zeros(1, bool), seed)
            regressor = None
            if target != OFF_GOAL and len(train) >= 2:
                regressor = fit_regressor(x_train, np.array([labels[by_id[i]][target][1] for i in train]))
            fit_s += time.perf_counter() - started
            started = time.perf_counter()
            # The table's rows are `distinct` in order (each content at its first sample id, ids sorted); the
            # same object for every target, so Ray ships it once.
            x_all = table.all
            p_all, predicted_scores = (predict_all or predict_local)(model_fit, regressor, x_all)
            predict_s += time.perf_counter() - started
            p_by_hash = dict(zip(distinct, p_all.tolist()))
            p_oof = model_fit.p_oof if len(train) else np.zeros(0)
            # The judged samples' own P is their out-of-fold one, as the interval's correction term uses it.
            for i, p in zip(train, p_oof):
                p_by_hash[by_id[i]] = float(p)
            chance = model_fit.chance
            quality = {"auc": model_fit.auc, "precision": model_fit.precision, "recall": model_fit.recall, "brier": model_fit.brier}
            positives = model_fit.positives
            scores_by_hash = dict(zip(distinct, predicted_scores.tolist())) if predicted_scores is not None else {}
        row = _interval(target, design, by_id, train, y, p_oof, p_by_hash, chance)
        if active is not None and active.trained.get(target_hash) == trained:
            active_rounds.apply_active(row, target_hash, active, design, by_id, rest, labels, p_by_hash)
        row.judged, row.positives = len(train), positives
        row.auc, row.precision, row.recall, row.brier = (quality[k] for k in ("auc", "precision", "recall", "brier"))
        p_decide, p_oof_decide, own = p_by_hash, p_oof, {}  # a decision predictor no better than chance: the interval's
        if target in deciding and not deciding[target].chance:
            p_decide = own = dict(zip(distinct, deciding[target].p_all.tolist()))
            p_oof_decide = deciding[target].p_oof
        decisions = _decide(row, labels, p_decide, y, p_oof_decide, min_precision, min_recall, ws.settings.cascade_confidence)
        if not row.chance:
            for h, (_, by) in decisions.items():
                if by == "pending":
                    band_unc[h] = max(band_unc.get(h, 0.0), float(decide.uncertainty(p_decide[h])))
        if reuse:  # store only the decisions that changed (new judgments, another precision target)
            # The stored decision P changes only with freshly fitted decision predictors, or when none decides now.
            if not own:
                predict_store.clear_decision_ps(ws, target_hash, version, model)
            before = predict_store.decision_ps(ws, target_hash, version, model) if decide_fitted and own else {}
            changes = [(d, by, own.get(h), h) for h, (d, by) in decisions.items()
                       if kept.get(h, (None, None, None, None))[2:] != (d, by) or before.get(h, own.get(h)) != own.get(h)]
            if changes:
                predict_store.update_decisions(ws, target_hash, version, model, changes)
        else:
            predict_store.save(ws, target_hash, target, version, model, trained,
                               {"p_oof": p_oof.tolist(), "chance": chance, "positives": positives, **quality},
                               ((h, min(1.0, max(0.0, p_by_hash[h])), scores_by_hash.get(h), *decisions[h], own.get(h))
                                for h in distinct))
        detail = {**(predict_store.predictor(ws, target_hash, version, model) or ("", {}))[1],
                  "row": row.model_dump(), "design": _design_key(design)}
        if target in deciding:
            detail["decide"] = decide.detail(deciding[target], decide_key)
        predict_store.save_detail(ws, target_hash, version, model, detail)
        rows.append(row)
    return PredictResult(population=len(by_id), judged_samples=len(drawn), min_precision=min_precision,
                         min_recall=min_recall, refit=refit, features="embedding" + features_key(ws),
                         targets=rows, fit_s=round(fit_s, 3), predict_s=round(predict_s, 3), decide_s=round(decide_s, 3),
                         band_order=sorted(band_unc, key=lambda h: -band_unc[h]))


def predict_local(model: Predictor, regressor: tuple[np.ndarray, float] | None,
                  x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(P (m,) of `model` for vectors `x` (m, d), the regressor's score clipped to 1-5 (m,) or None): the
    local engine's prediction step (scale.ray_predict does the same on Ray Data)."""
    return model.predict(x), ((x @ regressor[0] + regressor[1]).clip(1, 5) if regressor else None)


def _design_key(design: SampleDesign) -> str:
    return f"{design.dataset}:{design.size}"


def _interval(target: str, design: SampleDesign, by_id: dict[str, str], train: list[str], y: np.ndarray,
              p_oof: np.ndarray, p_by_hash: dict[str, float], chance: bool) -> TargetPrediction:
    """The target's share: PPI++ over the design's strata where the predictor helps, the sample-only
    (λ = 0) estimate where it is no better than chance; both intervals are returned."""
    oof = dict(zip(train, p_oof.tolist()))
    judged = dict(zip(train, y.tolist()))
    strata = []
    for label, ids in design.strata.items():
        got = [i for i in ids[: design.drawn[label]] if i in judged]
        strata.append(Stratum(f_all=np.array([p_by_hash.get(by_id[i], 0.0) for i in ids if i in by_id]),
                              y=np.array([judged[i] for i in got], dtype=float), f=np.array([oof[i] for i in got])))
    sample_only = ppi_share(strata, lam=0.0)
    used = sample_only if chance else ppi_share(strata)
    return TargetPrediction(
        id=target, judged=0, positives=0, auc=None, precision=None, recall=None, chance=chance,
        predicted=not chance, share=round(used.share, 4), ci_low=round(used.low, 4), ci_high=round(used.high, 4),
        sample_ci_low=round(sample_only.low, 4), sample_ci_high=round(sample_only.high, 4), lam=round(used.lam, 3),
    )


def _decide(row: TargetPrediction, labels: dict, p_by_hash: dict[str, float], y: np.ndarray, p_oof: np.ndarray,
            min_precision: float | None, min_recall: float | None = None,
            confidence: float = THRESHOLD_CONFIDENCE) -> dict[str, tuple[int | None, str]]:
    """content hash -> (decision 0/1 or None, decided_by): the judge where it judged this target; otherwise,
    with a precision target and a predictor better than chance, the predictor outside the band
    [t_low, t_high] (ppi.bounded_thresholds at one-sided `confidence`, ppi.thresholds' point estimates at 0; t_low from `min_recall`, default `min_precision`) and 'pending' (for the judge) inside; without a target, the predictor at P >= 0.5; a
    predictor no better than chance decides nothing. Sets the row's thresholds, estimated quality and counts."""
    t_low, t_high = -math.inf, math.inf
    if min_precision is not None and not row.chance and len(y):
        t_low, t_high = (bounded_thresholds(y, p_oof, min_precision, min_recall, confidence) if confidence > 0
                         else thresholds(y, p_oof, min_precision, min_recall))
        row.t_low = None if math.isinf(t_low) else round(t_low, 4)
        row.t_high = None if math.isinf(t_high) else round(t_high, 4)
        row.est_precision, row.est_recall, _ = cascade_quality(y, p_oof, t_low, t_high)
        row.est_precision_weak, row.est_recall_weak = weak_quality(y, p_oof, t_low, t_high)
    elif min_precision is None and not row.chance:
        t_low = t_high = 0.5
    counts: dict[str, int] = defaultdict(int)
    out: dict[str, tuple[int | None, str]] = {}
    for h, p in p_by_hash.items():
        known = labels.get(h, {}).get(row.id)
        if known is not None:
            decision, by = int(known[0]), "judge"
        elif row.chance:
            decision, by = None, "pending"
        elif p >= t_high:
            decision, by = 1, "predictor"
        elif p <= t_low and t_low < t_high:
            decision, by = 0, "predictor"
        elif t_low == t_high:  # no precision target: the predictor at 0.5
            decision, by = int(p >= t_high), "predictor"
        else:
            decision, by = None, "pending"
        counts[by] += 1
        out[h] = (decision, by)
    row.decided = {k: counts.get(k, 0) for k in ("judge", "predictor", "pending")}
    return out


def band_samples(ws: Workspace, contents: list[str]):
    """The first sample (by id) of each content hash in `contents`, in that order: what the cascade sends to
    the judge for a round of PredictResult.band_order (the contents pending on any target whose predictor is
    better than chance)."""
    wanted = set(contents)
    first: dict[str, str] = {}
    for i, (h, _) in sorted(ws.store.sample_hashes().items()):
        if h in wanted:
            first.setdefault(h, i)
    return ws.store.samples([first[h] for h in contents if h in first])


# The smallest round of the cascade's band (contents): rounds of a few samples would refit for little news.
ROUND_SMALLEST = 100


async def cascade(ws: Workspace, mode: str, min_precision: float, scorer: Callable[..., Awaitable] | None = None,
                  min_recall: float | None = None, predict_all: Callable | None = None, **score_kwargs):
    """Predict, then send the uncertain band to the judge through `scorer` (default scoring.score; other
    keyword arguments go to it) in rounds of `cascade_round` of the samples (at least ROUND_SMALLEST
    contents; 0: the whole band at once), the most uncertain first, predicting again after each round so its
    verdicts teach the decision predictors (decide.py) and the band shrinks; every content is sent at most
    once, and a round that stopped early (a cost cap) ends the cascade. `min_recall` and `predict_all` as
    predict's. Returns (the rounds' ScoreResult summed — calls, tokens, cost, new judgments —, or None when
    the band was empty; the final PredictResult)."""
    from goalcover.tools.judge import scoring

    table = None  # the same contents every round: read once when a round is judged (a rerun reads nothing)
    result = predict(ws, min_precision, min_recall=min_recall, predict_all=predict_all)
    size = decide.round_size(result.population, ws.settings.cascade_round, ROUND_SMALLEST)
    sent: set[str] = set()
    runs = []
    while todo := [h for h in result.band_order if h not in sent]:
        todo = todo[:size] if len(todo) > size else todo
        sent.update(todo)
        runs.append(await (scorer or scoring.score)(ws, mode, samples=band_samples(ws, todo), **score_kwargs))
        if table is None:
            table = feature_table(ws, {i: h for i, (h, _) in ws.store.sample_hashes().items()})
        result = predict(ws, min_precision, min_recall=min_recall, predict_all=predict_all, table=table)
        if runs[-1].stopped:
            break
    result.band_rounds = len(runs)
    return _summed(runs), result


def _summed(runs: list):
    """One ScoreResult for the cascade's rounds: calls, tokens, cost, new and repaired judgments and seconds
    summed; cached from the first round (judged before the cascade); the rest from the last; None for none."""
    if not runs:
        return None
    summed = {k: sum(getattr(r, k) for r in runs)
              for k in ("calls", "new", "prompt_tokens", "completion_tokens", "cost", "repaired", "elapsed_s")}
    return runs[-1].model_copy(update={**summed, "cached": runs[0].cached,
                                       "stopped": next((r.stopped for r in runs if r.stopped), None)})


def stored_rows(ws: Workspace) -> dict[str, TargetPrediction]:
    """target id -> the last stored prediction row for the current goal, judge and sample design (none when
    the design or judge changed since); read by coverage and export, no fitting."""
    goal = current_goal(ws, required=False)
    judge = current_judge(ws)
    design = current_design(ws)
    if goal is None or judge is None or design is None:
        return {}
    out = {}
    for target, target_hash in _target_hash(goal).items():
        stored = predict_store.predictor(ws, target_hash, *judge.key)
        if stored and stored[1].get("design") == _design_key(design) and "row" in stored[1]:
            out[target] = TargetPrediction.model_validate(stored[1]["row"])
    return out


def off_goal_decisions(ws: Workspace) -> tuple[set[str], TargetPrediction] | None:
    """(sample ids decided off-goal by the cascade — by the judge or the predictor —, the off-goal row with
    its estimated precision/recall), or None when no cascade (`--min-precision`) with a usable off-goal
    predictor is stored for the current goal, judge and design."""
    row = stored_rows(ws).get(OFF_GOAL)
    if row is None or row.chance or row.est_precision is None:  # only a cascade run at a precision target decides
        return None
    goal = current_goal(ws)
    judge = current_judge(ws)
    stored = predict_store.predictions(ws, _target_hash(goal)[OFF_GOAL], *judge.key)
    off = {h for h, (_, _, d, _) in stored.items() if d == 1}
    return {i for i, (h, _) in ws.store.sample_hashes().items() if h in off}, row


def apply_predicted(ws: Workspace, rows) -> None:
    """Replace coverage rows' estimated share and interval by the stored prediction-powered ones (for the
    current goal, judge and design) where the predictor is better than chance, and mark them `predicted`."""
    stored = stored_rows(ws)
    for row in rows:
        found = stored.get(row.id)
        if found is not None and not found.chance:
            row.share, row.ci_low, row.ci_high, row.predicted = found.share, found.ci_low, found.ci_high, True
