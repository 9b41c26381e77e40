"""From finished runs to the table: per-seed deltas, epochs ratios, the verdict against the paper's sign."""
from __future__ import annotations

import math

from .plan import select
from .presets import BASELINE, COLUMNS, Ablation


def _metric(metrics: dict, key: str) -> float:
    value = metrics.get(key) if metrics else None
    return float(value) if value is not None else math.nan


def _claim_measure(metrics: dict, measure: str) -> float:
    """A run's value of ``measure`` (see MEASURES) as a fraction; NaN when the run did not record it."""
    if measure == "train":
        return _metric(metrics, "train_error")
    if measure == "gap":
        train = _metric(metrics, "train_eval_error")  # eval mode on a fixed training subset, when measured
        if math.isnan(train):
            train = _metric(metrics, "train_error")
        return _metric(metrics, "val_top1_error") - train
    return _metric(metrics, "val_top1_error")


def epochs_to(curve, target: float) -> float:
    """The (interpolated) epoch at which an error curve [(epoch, error), ...] first reaches ``target``; NaN if never."""
    previous = (0.0, math.inf)
    for epoch, error in curve:
        if error <= target:
            e0, y0 = previous
            if math.isinf(y0):
                return float(epoch)
            return e0 + (epoch - e0) * (y0 - target) / (y0 - error) if y0 != error else float(epoch)
        previous = (float(epoch), float(error))
    return math.nan


def iterations_ratio(with_metrics: dict, without_metrics: dict) -> float:
    """§4.2: epochs to a common eval-mode training error with the paper's choice ÷ without it.

    The common level is the higher of the two runs' final errors: the fit both reach.  NaN without curves.
    """
    a, b = with_metrics.get("train_eval_curve"), without_metrics.get("train_eval_curve")
    if not a or not b:
        return math.nan
    target = max(a[-1][1], b[-1][1])
    ea, eb = epochs_to(a, target), epochs_to(b, target)
    return ea / eb if eb and not math.isnan(ea) and not math.isnan(eb) else math.nan


def t_critical(n: int, level: float = 0.95) -> float:
    """The two-sided Student-t critical value for the mean of ``n`` values (∞ for n < 2)."""
    if n < 2:
        return math.inf
    from scipy import stats

    return float(stats.t.ppf(0.5 + level / 2, n - 1))


VERDICTS = ("agrees", "disagrees", "inconclusive")


def verdict(values, *, expect_lower: bool = True, testable: bool = True, level: float = 0.95) -> str:
    """agrees / disagrees / inconclusive for per-seed deltas (with − without the paper's choice).

    The mean is judged against its standard error: the paper's direction must hold with the ``level`` (95%)
    Student-t interval of the mean on one side of zero -- agrees when the whole interval lies on the paper's
    side, disagrees when it lies on the other, inconclusive otherwise (a tie, one seed, or an interval that holds
    zero).  ``testable`` False (e.g. nothing overfits) is inconclusive whatever the numbers.
    """
    values = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not testable or len(values) < 2:
        return "inconclusive"
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_critical(n, level) * sd / math.sqrt(n)
    if mean == 0 or abs(mean) <= half:
        return "inconclusive"
    return "agrees" if (mean < 0) == expect_lower else "disagrees"


def _mean_std(values) -> tuple[float, float]:
    import pandas as pd

    s = pd.Series(values, dtype=float).dropna()
    return (s.mean() if len(s) else math.nan), (s.std() if len(s) > 1 else math.nan)


def _row_values(a: Ablation, results: dict, seeds) -> dict:
    """Per-seed deltas of one row: top-1, top-5, the claim's measure, and the gap of the run without the choice."""
    d1, d5, dc, without_gap = [], [], [], []
    for seed in seeds:
        if a.kind == "ensemble":
            pairs = results.get(("ensemble", seed)) or []
            for pair in pairs:
                d1.append(100 * pair["delta_top1"])
                d5.append(100 * pair["delta_top5"])
                dc.append(d1[-1])
            continue
        if a.kind == "iterations":
            w, wo = results.get((BASELINE, seed)), results.get((a.uses, seed))
            ratio = iterations_ratio(w, wo) if w is not None and wo is not None else math.nan
            if not math.isnan(ratio):
                dc.append(ratio)
            continue
        base = results.get((a.with_name, seed))
        if base is None:
            continue
        if a.evaluation:  # 10 crops (the paper's choice) vs the centre crop, same network
            variant = base
            with1, without1 = _metric(base, "val_top1_error_10crop"), _metric(base, "val_top1_error")
            with5, without5 = _metric(base, "val_top5_error_10crop"), _metric(base, "val_top5_error")
        else:
            variant = results.get((a.name, seed))
            if variant is None:
                continue
            with1, without1 = _metric(base, "val_top1_error"), _metric(variant, "val_top1_error")
            with5, without5 = _metric(base, "val_top5_error"), _metric(variant, "val_top5_error")
        if math.isnan(with1) or math.isnan(without1):
            continue
        d1.append(100 * (with1 - without1))
        d5.append(100 * (with5 - without5))
        if a.measure == "val" or a.evaluation:
            dc.append(d1[-1])
        else:
            withc, withoutc = _claim_measure(base, a.measure), _claim_measure(variant, a.measure)
            dc.append(100 * (withc - withoutc))
            if a.measure == "gap":
                without_gap.append(100 * withoutc)
    return dict(d1=d1, d5=d5, dc=dc, without_gap=without_gap)


def ablation_table(results: dict, ablations=None, seeds=(0,), *, data: str = "", scale: str = "",
                   budget: str = ""):
    """The table: one row per ablation, the paper's delta beside the measured one (mean ± std over seeds).

    ``results`` maps (variant name, seed) to a run's final metrics (errors as fractions 0-1, as train reports
    them), and ("ensemble", seed) to that seed's pair ensembles (``ensemble_results``).  delta = error(with the
    paper's choice) − error(without it), in percentage points; rows whose runs have not finished yet have n = 0
    and empty measurements.  ``measured_claim`` is the delta in what the paper's claim is about (``measure``:
    validation error, training error, the overfitting gap, or an epochs ratio; see MEASURES); ``verdict``
    judges it with its uncertainty (``verdict``), and ``sign_agrees`` is the verdict as True / False / None.
    An overfitting claim ("without it, substantial overfitting") is testable only where the network without the
    paper's choice overfits: its own gap's interval lies above zero.
    """
    import pandas as pd

    rows = []
    for a in select(ablations):
        v = _row_values(a, results, seeds)
        mean1, std1 = _mean_std(v["d1"])
        mean5, std5 = _mean_std(v["d5"])
        meanc, stdc = _mean_std(v["dc"])
        testable = True
        if a.measure == "gap":  # the network without the choice must overfit at all
            testable = verdict(v["without_gap"], expect_lower=False) == "agrees"
        if a.kind == "iterations":  # a ratio: the paper's choice takes longer (log ratio > 0)
            logs = [math.log(r) for r in v["dc"] if r and not math.isnan(r) and r > 0]
            judged = verdict(logs, expect_lower=False)
        else:
            judged = verdict(v["dc"], expect_lower=a.expect_lower, testable=testable) if a.expect_lower else ""
        n = len(v["dc"]) if a.kind != "delta" or a.evaluation else len(v["d1"])
        rows.append(dict(
            ablation=a.name, claim=a.claim or "", section=a.section, change=a.description,
            paper_top1=a.paper_top1, paper_top5=a.paper_top5, paper_words=a.paper_words,
            measured_top1=mean1, measured_top1_std=std1, measured_top5=mean5, measured_top5_std=std5, n=n,
            sign_agrees={"agrees": True, "disagrees": False}.get(judged),
            data=data, scale=scale, budget=budget, measure=a.measure,
            measured_claim=meanc, measured_claim_std=stdc,
            verdict=judged if n else "", testable=testable if a.measure == "gap" and n else None,
            without_gap=_mean_std(v["without_gap"])[0],
        ))
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table["paper_top1"] = table["paper_top1"].astype(float)
    table["paper_top5"] = table["paper_top5"].astype(float)
    table["sign_agrees"] = table["sign_agrees"].astype(object)
    table["testable"] = table["testable"].astype(object)
    return table
