"""How `goalcover score --predict` prints its predictors, intervals and cascade decisions."""

from __future__ import annotations

from goalcover.ui.cli_output import out


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.0%}"


def print_predicted(predicted, band=None) -> None:
    """Print a PredictResult (tools.predict): per target its cross-validated AUC, precision and recall, its
    share with the prediction-powered interval beside the sample-only one (or "no better than chance"), and
    with --min-precision the cascade's thresholds, estimated precision/recall and who decided how many
    samples; `band` is the ScoreResult of the band sent to the judge, or None."""
    out.print(f"predicted from {predicted.judged_samples:,} judged of {predicted.population:,} samples "
              f"({'embeddings and words' if 'words' in predicted.features else 'embeddings'} → logistic regression, "
              f"5-fold cross-fitted; PPI++ 95% intervals):", highlight=False)
    for t in predicted.targets:
        auc = "AUC –" if t.auc is None else f"AUC {t.auc:.2f}"
        head = f"  {t.id}: {auc} · precision {_pct(t.precision)} · recall {_pct(t.recall)}"
        if t.chance:
            out.print(f"{head} · no better than chance: sample-only estimate {t.share:.1%} ({t.ci_low:.1%}–{t.ci_high:.1%})",
                      highlight=False, markup=False)
            continue
        line = (f"{head} · predicted {t.share:.1%} ({t.ci_low:.1%}–{t.ci_high:.1%}; "
                f"sample-only {t.sample_ci_low:.1%}–{t.sample_ci_high:.1%})")
        if predicted.min_precision is not None:
            d = t.decided
            line += (f" · cascade: judge {d.get('judge', 0):,}, predictor {d.get('predictor', 0):,}, pending {d.get('pending', 0):,}; "
                     f"est. precision {_pct(t.est_precision)}, recall {_pct(t.est_recall)}")
        out.print(line, highlight=False, markup=False)
    if band is not None:
        rounds = predicted.band_rounds
        out.print(f"cascade: {band.calls} calls judged the uncertain band in {rounds} round{'s' if rounds != 1 else ''}, "
                  f"the most uncertain first, each teaching the decision predictors (${band.cost:.4f})", highlight=False)


def print_weak_counts(counts) -> None:
    """Under `goalcover gaps`: per subgoal with a cascade (gaps_predicted.WeakCount with predicted samples),
    how many weak samples the judge scored and how many the predictor decided, with the cascade's estimated
    precision and recall of "weak" and how many of the predicted ones the gaps hold."""
    for c in counts:
        if c.est_precision is None and not c.predicted:
            continue
        out.print(f"{c.subgoal_id}: weak samples {c.judged:,} judged + {c.predicted:,} predicted by the cascade "
                  f"(est. precision {_pct(c.est_precision)}, recall {_pct(c.est_recall)} of 'weak'); "
                  f"{c.in_gaps:,} predicted ones are in the gaps above", highlight=False, markup=False)
