"""From finished runs to the table: per-seed deltas, epochs ratios, the verdict against the paper's sign."""
from __future__ import annotations

import math

from .plan import select
from .presets import ABLATION, BASELINE, COLUMNS, POWER_COLUMNS, Ablation


def _metric(metrics: dict, key: str) -> float:
    value = metrics.get(key) if metrics else None
    return float(value) if value is not None else math.nan


def _claim_measure(metrics: dict, measure: str) -> float:
    """A run's value of ``measure`` (see MEASURES) as a fraction; NaN when the run did not record it."""
    if measure == "train":
        return _metric(metrics, "train_error")
    if measure == "gap":
        return _metric(metrics, "val_top1_error") - _fit_error(metrics)
    return _metric(metrics, "val_top1_error")


def _fit_error(metrics: dict) -> float:
    """How well a run fits its training images: the eval-mode error on a fixed training subset when measured,
    else the running training error (augmented, dropout on: biased)."""
    error = _metric(metrics, "train_eval_error")
    return _metric(metrics, "train_error") if math.isnan(error) else error


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


def half_width(sd: float, n: int, level: float = 0.95) -> float:
    """Half the ``level`` Student-t interval of a mean of ``n`` values that scatter by ``sd`` (∞ for n < 2)."""
    return t_critical(n, level) * float(sd) / math.sqrt(n) if n >= 2 else math.inf


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
    half = half_width(sd, n, level)
    if mean == 0 or abs(mean) <= half:
        return "inconclusive"
    return "agrees" if (mean < 0) == expect_lower else "disagrees"


def _interval(values) -> dict:
    """n, mean, std and the 95% t-interval (low, high; ±∞ for one value) of per-seed values: what a check's
    summary line prints."""
    n = len(values)
    mean, sd = _mean_std(values)
    half = half_width(sd, n)
    return dict(n=n, mean=mean, std=sd, low=mean - half, high=mean + half)


def capacity_summary(capacity) -> list[dict]:
    """Per ablation of a ``trained_capacity`` frame: n, mean and std of the delta (points), its 95% interval and
    ``used`` -- whether the layer's capacity is shown used (the interval below zero: ``verdict``'s "agrees")."""
    out = []
    if not len(capacity):
        return out
    for name, group in capacity.groupby("ablation", sort=True):
        deltas = [float(d) for d in group["delta"]]
        out.append(dict(ablation=name, images=int(group["images"].iloc[0]), **_interval(deltas),
                        used=verdict(deltas) == "agrees"))
    return out


def colour_summary(colour) -> list[dict]:
    """Per ablation of a ``trained_colour`` frame: for the networks trained without PCA colour noise, n, mean and
    std of their error rise on jittered images (points), its 95% interval and ``active`` (the interval above zero:
    the noise hurts them, so there is something for training with it to teach); ``baseline_rise``, the mean rise of
    the baselines trained with it (NaN where none is on disk), and ``changed``, the mean % of predictions the
    noise moves in the networks without it."""
    out = []
    if not len(colour):
        return out
    for name, group in colour.groupby("ablation", sort=True):
        without = group[group["network"] == "without"]
        rises = [float(r) for r in without["rise"]]
        baseline = group[group["network"] == "baseline"]["rise"]
        out.append(dict(ablation=name, images=int(group["images"].iloc[0]), **_interval(rises),
                        active=verdict(rises, expect_lower=False) == "agrees",
                        baseline_rise=float(baseline.mean()) if len(baseline) else math.nan,
                        changed=float(without["changed"].mean()) if rises else math.nan))
    return out


def views_summary(views) -> list[dict]:
    """Per row of a ``trained_views`` frame (ten_crop, ensemble): n (seeds or pairs of seeds), the mean, std, lowest
    and highest % of validation images whose label the two predictions disagree on (``changed``), the mean % where
    exactly one of them is right (``one_right``) and the mean delta (points)."""
    out = []
    if not len(views):
        return out
    for name, group in views.groupby("row", sort=False):
        changed = [float(c) for c in group["changed"]]
        mean, sd = _mean_std(changed)
        out.append(dict(row=name, images=int(group["images"].iloc[0]), n=len(changed), mean=mean, std=sd,
                        low=min(changed), high=max(changed), one_right=float(group["one_right"].mean()),
                        delta=float(group["delta"].mean())))
    return out


POWER = 0.8  # the chance of a verdict that the power columns are computed for
SIZE_WORDS = ("as the paper's", "smaller than the paper's", "larger than the paper's", "cannot tell",
              "opposite to the paper's")


def detectable_effect(sd: float, n: int, *, power: float = POWER, level: float = 0.95) -> float:
    """The smallest true mean delta that ``verdict`` finds (interval clear of zero) in ``power`` of repeats.

    With ``n`` paired seeds whose deltas scatter by ``sd``: (t_{(1+level)/2, n−1} + t_{power, n−1})·sd/√n, the
    usual approximation for a one-sample t-test (noncentral t ignored).  NaN for fewer than 2 seeds or no sd: a
    single seed has no spread to judge by, so nothing is detectable.
    """
    if n is None or n < 2 or sd is None or math.isnan(float(sd)):
        return math.nan
    from scipy import stats

    return (t_critical(n, level) + float(stats.t.ppf(power, n - 1))) * float(sd) / math.sqrt(n)


def seeds_needed(effect: float, sd: float, *, power: float = POWER, level: float = 0.95, most: int = 1000):
    """How many seeds ``verdict`` needs to find a true delta of size ``effect`` in ``power`` of repeats, when the
    per-seed deltas scatter by ``sd`` (as measured); None when no number of seeds up to ``most`` does, or the
    effect or the spread is unknown.  An sd from 3 seeds is itself rough: read the answer as an order of size."""
    if effect is None or sd is None or math.isnan(float(effect)) or math.isnan(float(sd)) or effect == 0:
        return None
    if sd == 0:
        return 2
    for n in range(2, most + 1):
        if detectable_effect(sd, n, power=power, level=level) <= abs(float(effect)):
            return n
    return None


def size_against_paper(mean: float, sd: float, n: int, paper: float, level: float = 0.95) -> str:
    """Where the paper's number lies against the ``level`` interval of the measured mean delta.

    "as the paper's": the interval holds it and not zero; "cannot tell": it holds both (the seeds tell neither
    the sign nor the size -- never read as agreement); "smaller than the paper's": the whole interval lies
    between zero and the paper's number, or holds zero but not the paper's number; "larger than the paper's":
    the whole interval lies beyond it; "opposite to the paper's": the whole interval lies on the other side of
    zero.  "" without a number, or with fewer than 2 seeds.  The paper measured on ImageNet at 224 px, so this says
    how the effect *here* compares in size -- never a verdict on the paper.
    """
    values = (mean, sd, paper)
    if n is None or n < 2 or any(v is None or math.isnan(float(v)) for v in values) or paper == 0:
        return ""
    half = half_width(sd, n, level) + 1e-6  # + a hair: the CSV's rounding decides nothing
    sign = 1.0 if paper > 0 else -1.0  # measure along the paper's direction: its number becomes positive
    low, high = sign * mean - half, sign * mean + half
    if low <= abs(paper) <= high:
        return SIZE_WORDS[3] if low <= 0 else SIZE_WORDS[0]
    if high < 0:
        return SIZE_WORDS[4]
    return SIZE_WORDS[1] if high < abs(paper) else SIZE_WORDS[2]


def add_power(table, *, power: float = POWER, level: float = 0.95):
    """Fill the power columns of an ablation table from its own numbers (so an older CSV gets them on reading).

    ``detectable``: the smallest true delta in the claim's measure that the row's seeds would find in ``power``
    of repeats, given the measured spread; ``seeds_needed``: the seeds that would find an effect of the paper's
    size here; ``size``: ``size_against_paper``.  The last two only for rows judged on validation error that
    compare like with like (not the ensemble row: the paper averaged five networks, the study two).
    """
    detectable, needed, size = [], [], []
    for row in table.itertuples():
        n = int(row.n) if row.n == row.n and row.n is not None else 0
        sd = row.measured_claim_std
        detectable.append(detectable_effect(sd, n, power=power, level=level) if row.measure != "epochs"
                          else math.nan)
        a = ABLATION.get(row.ablation)
        sized = (a is not None and a.kind == "delta" and row.measure == "val" and row.paper_top1 is not None
                 and not math.isnan(float(row.paper_top1)))
        needed.append(seeds_needed(row.paper_top1, sd, power=power, level=level) if sized and n >= 2 else None)
        size.append(size_against_paper(row.measured_claim, sd, n, row.paper_top1, level) if sized else "")
    table["detectable"] = [float(x) for x in detectable]
    table["seeds_needed"] = pd_int(needed)
    table["size"] = size
    return table


def pd_int(values):
    """Whole numbers that may be missing, as pandas keeps them (Int64, <NA> for None)."""
    import pandas as pd

    return pd.array(values, dtype="Int64")


def _mean_std(values) -> tuple[float, float]:
    import pandas as pd

    s = pd.Series(values, dtype=float).dropna()
    return (s.mean() if len(s) else math.nan), (s.std() if len(s) > 1 else math.nan)


def _row_values(a: Ablation, results: dict, seeds) -> dict:
    """Per-seed deltas of one row: top-1, top-5, the claim's measure, the training (fit) error, and the gap of
    the run without the choice."""
    d1, d5, dc, dt, without_gap, mechanism = [], [], [], [], [], []
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
        if not a.evaluation:
            dt.append(100 * (_fit_error(base) - _fit_error(variant)))
        if a.measure == "val" or a.evaluation:
            dc.append(d1[-1])
        else:
            withc, withoutc = _claim_measure(base, a.measure), _claim_measure(variant, a.measure)
            dc.append(100 * (withc - withoutc))
            if a.needs == "overfitting":
                without_gap.append(100 * withoutc)
        if a.needs == "colour" and isinstance(results.get(("colour", seed)), (int, float)):
            mechanism.append(100 * results[("colour", seed)])
    return dict(d1=d1, d5=d5, dc=dc, dt=dt, without_gap=without_gap, mechanism=mechanism)


def _testable(a: Ablation, v: dict) -> bool | None:
    """Whether the row's precondition (``a.needs``, see presets.NEEDS) holds in its runs; None where it cannot be
    judged (no precondition, or the measure was not recorded -- the verdict is then the plain one)."""
    if a.needs == "overfitting":  # the network without the choice must overfit at all
        return verdict(v["without_gap"], expect_lower=False) == "agrees"
    if a.needs == "capacity":  # the network with the layer must fit its training images better
        measured = [d for d in v["dt"] if not math.isnan(d)]
        return verdict(measured) == "agrees" if len(measured) >= 2 else None
    if a.needs == "colour":  # the networks trained without the noise must be hurt by it (their error rises)
        return verdict(v["mechanism"], expect_lower=False) == "agrees" if len(v["mechanism"]) >= 2 else None
    return None


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
    paper's choice overfits: its own gap's interval lies above zero.  A claim that needs capacity (removing a
    middle conv layer) is testable only where the network with the layer fits its training images better: the
    interval of ``train_delta`` (eval-mode training error, with − without, every delta row) lies below zero;
    without that measure (older tables) ``testable`` stays None and the verdict is the validation one.
    """
    import pandas as pd

    rows = []
    for a in select(ablations):
        v = _row_values(a, results, seeds)
        mean1, std1 = _mean_std(v["d1"])
        mean5, std5 = _mean_std(v["d5"])
        meanc, stdc = _mean_std(v["dc"])
        train_delta, train_delta_std = _mean_std(v["dt"])
        mechanism, mechanism_std = _mean_std(v["mechanism"])
        testable = _testable(a, v)
        if a.kind == "iterations":  # a ratio: the paper's choice takes longer (log ratio > 0)
            logs = [math.log(r) for r in v["dc"] if r and not math.isnan(r) and r > 0]
            judged = verdict(logs, expect_lower=False)
        else:
            judged = (verdict(v["dc"], expect_lower=a.expect_lower, testable=testable is not False)
                      if a.expect_lower else "")
        n = len(v["dc"]) if a.kind != "delta" or a.evaluation else len(v["d1"])
        rows.append(dict(
            ablation=a.name, claim=a.claim or "", section=a.section, change=a.description,
            paper_top1=a.paper_top1, paper_top5=a.paper_top5, paper_words=a.paper_words,
            measured_top1=mean1, measured_top1_std=std1, measured_top5=mean5, measured_top5_std=std5, n=n,
            sign_agrees={"agrees": True, "disagrees": False}.get(judged),
            data=data, scale=scale, budget=budget, measure=a.measure,
            measured_claim=meanc, measured_claim_std=stdc,
            verdict=judged if n else "", testable=testable if a.needs and n else None,
            without_gap=_mean_std(v["without_gap"])[0], train_delta=train_delta, train_delta_std=train_delta_std,
            mechanism=mechanism, mechanism_std=mechanism_std,
        ))
    table = pd.DataFrame(rows, columns=[c for c in COLUMNS if c not in POWER_COLUMNS])
    table["paper_top1"] = table["paper_top1"].astype(float)
    table["paper_top5"] = table["paper_top5"].astype(float)
    table["sign_agrees"] = table["sign_agrees"].astype(object)
    table["testable"] = table["testable"].astype(object)
    return add_power(table)[list(COLUMNS)]


def why_empty(table) -> dict:
    """For each row without a measurement, why: "not run yet", or why it cannot be measured in this table's
    setting -- an ensemble averages two seeds' baselines, so one seed has none; epochs to a common training error
    need the eval-mode training curve that the study recipe's probe records (the quick recipe has none).  The
    number of seeds is the header's configuration; a table without one (the live panel) is not second-guessed."""
    import json

    import pandas as pd

    try:
        seeds = len(json.loads(table.attrs.get("configuration") or "{}")["seeds"])
    except (KeyError, TypeError, ValueError):
        seeds = None
    measured = {name: bool(n) for name, n in zip(table["ablation"], table["n"]) if not pd.isna(n)}
    out = {}
    for name, n in measured.items():
        if n:
            continue
        a = ABLATION.get(name)
        if a is not None and a.kind == "ensemble" and seeds is not None and seeds < 2:
            out[name] = "not measurable with 1 seed: it averages two seeds' baselines"
        elif a is not None and a.kind == "iterations" and measured.get(a.uses):
            out[name] = f"not measurable here: {a.uses}'s runs record no eval-mode training curve (recipe study has it)"
        else:
            out[name] = "not run yet"
    return out
