"""The paper's ablations (§3.1–§7): each claim, the run that re-measures it, and the table beside the paper.

The paper argues for a list of design choices, each credited with an error-rate gain (its §3.1–§4.2, §6, §7).
``ABLATIONS`` holds them as data: a name (the ``paper.CLAIMS`` name where the paper states a number), the
configuration change that removes the choice, and where the paper says so.  ``run_ablations`` trains the
baseline and one network per variant and seed through ``train.train`` -- which reuses finished runs from the
results store by config hash and resumes an interrupted run from its checkpoint -- and returns the table.

Sign convention (the paper's):  delta = error(with the paper's choice) − error(without it), in percentage
points.  The paper's claims are therefore negative ("LRN reduces top-1 error by 1.4%" is −1.4), and a
measured delta agrees in sign when it is negative too.
"""
from __future__ import annotations

import argparse
import datetime
import io
import json
import math
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from . import paper

BASELINE = "baseline"


@dataclass(frozen=True)
class Ablation:
    """One design choice of the paper, the change that removes it, and the paper's number for it."""

    name: str
    claim: str | None  # the paper.CLAIMS name when the paper states this claim; None for conventions/errata
    description: str  # what the variant changes, in the paper's words
    section: str
    change: dict = field(default_factory=dict)  # TrainConfig overrides; "model_options" is merged into the model's
    evaluation: bool = False  # True: no retraining, two evaluations of the baseline run (10 crops vs centre)
    words: str = ""  # the paper's statement when it gives no number (or none is in paper.CLAIMS)
    expect_lower: bool = True  # the paper says its choice lowers error (so a negative delta agrees)
    # what the paper's claim is about, and so what its sign is judged on (MEASURES): "val" = validation top-1
    # error; "train" = training error at the end of the budget (§3.1 trains faster, §5 weight decay "reduces the
    # model's training error"); "gap" = validation minus training error, i.e. overfitting (§4.1, §4.2)
    measure: str = "val"
    # TrainConfig overrides applied to both sides of the comparison: the row then has its own "with" run
    # (``name:with``) instead of the baseline, e.g. the four-layer net of §3.3's CIFAR-10 claim
    base_change: dict = field(default_factory=dict)
    # "delta": two runs compared; "iterations": epochs to a common training error, from another row's runs
    # (``uses``); "ensemble": the baseline networks of several seeds averaged (no training of its own)
    kind: str = "delta"
    uses: str | None = None

    @property
    def trains(self) -> bool:
        """Whether the row needs a run of its own (the others read the baseline's or another row's runs)."""
        return not self.evaluation and self.kind == "delta"

    @property
    def with_name(self) -> str:
        """The name of the run with the paper's choice: the baseline, or the row's own ``name:with``."""
        return f"{self.name}:with" if self.base_change else BASELINE

    @property
    def paper_claim(self) -> paper.Claim | None:
        return paper.CLAIM.get(self.claim) if self.claim else None

    @property
    def paper_top1(self) -> float | None:
        return self.paper_claim.top1 if self.paper_claim else None

    @property
    def paper_top5(self) -> float | None:
        return self.paper_claim.top5 if self.paper_claim else None

    @property
    def paper_words(self) -> str:
        return self.paper_claim.other if self.paper_claim and self.paper_claim.other else self.words


ABLATIONS = (
    Ablation("relu_vs_tanh", "relu_vs_tanh", "tanh instead of ReLU in every layer", "§3.1, Fig. 1",
             {"model_options": {"activation": "tanh"}}, measure="train"),
    Ablation("two_towers", "two_towers", "the one-GPU net (half the kernels in conv1-4, no groups) instead of two "
             "towers", "§3.2", {"model_options": {"towers": 1}}),
    Ablation("lrn", "lrn", "no local response normalisation", "§3.3", {"model_options": {"lrn": None}}),
    Ablation("lrn_printed", None, "LRN with α as printed (no /n) instead of the authors' code (α/n)", "§3.3",
             {"model_options": {"lrn": "printed"}}, words="the paper prints the formula; its code divides α by n",
             expect_lower=False),
    Ablation("lrn_caffe", None, "LRN with Caffe's k=1 instead of the paper's k=2", "§3.3",
             {"model_options": {"lrn": "caffe"}}, words="k=2 in the paper; bvlc_alexnet runs with k=1",
             expect_lower=False),
    Ablation("lrn_beta", None, "LRN with the seed text's β=1.5 instead of the paper's β=0.75", "§3.3",
             {"model_options": {"lrn_beta": paper.SEED_LRN_BETA}},
             words="β=0.75 in the paper and the seed code; the seed text's 1.5 is an erratum", expect_lower=False),
    Ablation("overlapping_pool", "overlapping_pool", "non-overlapping pooling (z=2, s=2) instead of z=3, s=2",
             "§3.4", {"model_options": {"pool": "non-overlapping"}}),
    Ablation("pca_colour", "pca_colour", "no PCA colour augmentation", "§4.1", {"pca_colour": False}),
    Ablation("crops_flips", "crops_flips", "no random crops or flips (the centre crop only)", "§4.1",
             {"crops_flips": False}, measure="gap"),
    Ablation("dropout", "dropout", "no dropout in fc6, fc7", "§4.2", {"model_options": {"dropout": 0.0}},
             measure="gap"),
    Ablation("remove_conv3", "middle_conv", "conv3 removed", "§7", {"model_options": {"remove": "conv3"}}),
    Ablation("remove_conv4", "middle_conv", "conv4 removed", "§7", {"model_options": {"remove": "conv4"}}),
    Ablation("weight_decay", "weight_decay", "no weight decay (0 instead of 5e-4)", "§5", {"weight_decay": 0.0},
             measure="train"),
    Ablation("ten_crop", "ten_crop", "the centre crop instead of 10 crops at test time (same trained network)",
             "§6", evaluation=True),
    Ablation("lrn_fourlayer", "lrn_cifar", "no LRN in the four-layer CIFAR-10 net (the net with LRN after its first "
             "two pools, cuda-convnet's 18% layout)", "§3.3", {"model_options": {"lrn": None}},
             base_change={"model": "fourlayer", "init_std": None, "init_bias": None,
                          "model_options": {"lrn": "authors", "init": "default"}}),
    Ablation("dropout_iterations", "dropout_iterations", "epochs to a common training error (eval mode) with "
             "dropout ÷ without (the dropout row's runs)", "§4.2", measure="epochs", kind="iterations",
             uses="dropout"),
    Ablation("ensemble", "ensemble", "one network instead of the average of several seeds' baseline networks "
             "(softmax averaged, centre crop; every pair of seeds)", "§6, Table 2", kind="ensemble"),
)
# rows that test a claim of the paper (the study preset runs these; the others are conventions and errata)
CLAIM_ROWS = tuple(a.name for a in ABLATIONS if a.claim and a.expect_lower)
ABLATION = {a.name: a for a in ABLATIONS}

# What each ``Ablation.measure`` judges the paper's sign on; every delta is error(with the paper's choice) −
# error(without it) in percentage points, so negative agrees with the paper.
MEASURES = {
    "val": "validation top-1 error",
    "train": "training error (last epoch, as training saw it: augmented, dropout on)",
    "gap": "overfitting: validation top-1 error − training error, both in eval mode (centre crop, no dropout) "
           "on a fixed training subset (runs with train_eval_size > 0; else the running training error, biased)",
    "epochs": "ratio of epochs to reach a common eval-mode training error (with ÷ without the paper's choice)",
}

# Presets for the CLI and the notebook; "recipe" names train.RECIPES, the shared starting point of every run.
# quick: the whole table on real CIFAR-10 with the scaled network, 1 seed, in 22 minutes on 2 CPU cores (measured;
# the book's CPU recipe -- warm-up, linear decay, input scaled by 1/64 -- with a shorter budget); full: the 224
# network on an ImageNet subset on a GPU with the paper's recipe (§5); smoke: seconds, synthetic data.
PRESETS = {
    "smoke": dict(recipe="smoke", data="synthetic", scale="scaled", budget_epochs=1, budget_steps=2, seeds=(0,),
                  limit=128, device="cpu"),
    "quick": dict(recipe="quick", data="cifar10", scale="scaled", budget_epochs=2, budget_steps=None, seeds=(0,),
                  limit=None, device="auto"),
    "full": dict(recipe="paper", data="imagenet-subset", scale="full", budget_epochs=30, budget_steps=None,
                 seeds=(0,), limit=None, device="auto"),
    # study: every claim of the paper, 3 seeds, at a budget where each can show (docs/ablations.md): the study
    # recipe (5,000 CIFAR-10 training and validation images, 12 epochs, eval-mode overfitting measure)
    "study": dict(recipe="study", data="cifar10", scale="scaled", budget_epochs=12, budget_steps=None,
                  seeds=(0, 1, 2), limit=5_000, device="auto", ablations=CLAIM_ROWS),
}

COLUMNS = ("ablation", "claim", "section", "change", "paper_top1", "paper_top5", "paper_words",
           "measured_top1", "measured_top1_std", "measured_top5", "measured_top5_std", "n", "sign_agrees",
           "data", "scale", "budget", "measure", "measured_claim", "measured_claim_std", "verdict", "testable",
           "without_gap")


def claims_table():
    """The claims as the paper states them: one row per ablation, its section, change and the paper's number."""
    import pandas as pd

    return pd.DataFrame([dict(ablation=a.name, section=a.section, change=a.description,
                              paper_top1=a.paper_top1, paper_top5=a.paper_top5, paper_words=a.paper_words,
                              run="evaluation of the baseline" if a.evaluation else "retrained")
                         for a in ABLATIONS])


def results_dir(path: str | Path | None = None) -> Path:
    """Where committed result tables live: ``path``, else env ``ALEXNET_BOOK_RESULTS``, else ``<project>/results``."""
    if path is not None:
        return Path(path)
    if os.environ.get("ALEXNET_BOOK_RESULTS"):
        return Path(os.environ["ALEXNET_BOOK_RESULTS"])
    from .data import project_root

    return project_root() / "results"


def select(ablations=None) -> tuple[Ablation, ...]:
    """The ablations named in ``ablations`` (names or claim names, a list or a comma-separated string); all when None."""
    if ablations is None:
        return ABLATIONS
    if isinstance(ablations, str):
        ablations = [a for a in ablations.split(",") if a.strip()]
    chosen = []
    for name in ablations:
        if isinstance(name, Ablation):
            chosen.append(name)
            continue
        name = name.strip()
        matches = [a for a in ABLATIONS if name in (a.name, a.claim)]
        if not matches:
            raise ValueError(f"unknown ablation {name!r}; choose from {', '.join(ABLATION)} "
                             f"(`alexnet-book ablate --list` describes them)")
        chosen += [a for a in matches if a not in chosen]
    if not chosen:
        raise ValueError("no ablation selected; name at least one (e.g. --only lrn,dropout)")
    return tuple(chosen)


def variant_config(base, ablation: Ablation | None, **fields):
    """The TrainConfig of one variant: ``base`` with the ablation's change (model_options merged) and ``fields``."""
    import dataclasses

    change = {**(ablation.change if ablation is not None else {}), **fields}
    options = {**base.model_options, **change.pop("model_options", {})}
    return dataclasses.replace(base, model_options=options, **change)


def plan_runs(data: str = "auto", scale: str | None = "scaled", budget_epochs: int | None = 2,
              budget_steps: int | None = None, seeds=(0,), device: str = "auto", ablations=None,
              limit: int | None = None, base: dict | None = None, recipe: str = "paper") -> list[tuple[str, int, object]]:
    """The runs an ablation table needs: (variant name, seed, TrainConfig), the baseline first for each seed.

    Every run starts from ``train.RECIPES[recipe]`` ("paper" = §5 as written); data, scale, device, the budget
    and ``limit`` (when given) replace the recipe's; ``base`` holds further TrainConfig fields shared by every
    run (e.g. ``{"out_dir": "runs", "lr": 0.01}``).  Variants are trained without the 10-crop evaluation (only
    the baseline's is used, by ``ten_crop``).
    """
    from .config import RECIPES, TrainConfig

    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")

    chosen = select(ablations)
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("no seeds given; pass at least one, e.g. seeds=(0,)")
    if budget_steps is not None and budget_steps <= 0:
        raise ValueError(f"budget_steps must be a positive number of optimiser steps, not {budget_steps}")
    if budget_steps is None and (budget_epochs is None or budget_epochs <= 0):
        raise ValueError(f"budget_epochs must be a positive number of epochs, not {budget_epochs}")
    if limit is not None and limit <= 0:
        raise ValueError(f"limit must be a positive number of images per split, not {limit}")
    fields = {**RECIPES[recipe], "data": data, "scale": scale, "device": device, "max_steps": budget_steps}
    if limit is not None:
        fields["limit"] = limit
    if budget_epochs is not None:
        fields["epochs"] = int(budget_epochs)
    elif budget_steps is not None:
        fields["epochs"] = 10**6  # the step budget stops the run
    fields.update(base or {})
    runs = []
    for seed in seeds:
        baseline = TrainConfig(**{**fields, "seed": seed})
        runs.append((BASELINE, seed, baseline))
        for a in chosen:
            if not a.trains:
                continue
            with_run = baseline
            if a.base_change:
                with_run = variant_config(baseline, Ablation(a.with_name, None, "", "", a.base_change), ten_crop=False)
                runs.append((a.with_name, seed, with_run))
            runs.append((a.name, seed, variant_config(with_run, a, ten_crop=False)))
    return runs


def budget_text(budget_epochs=None, budget_steps=None, limit=None) -> str:
    """The budget in words: "2 epochs", "300 steps", with ", 1000 images/split" when limited."""
    n, unit = (budget_steps, "step") if budget_steps else (budget_epochs, "epoch")
    text = f"{n} {unit}{'' if n == 1 else 's'}"
    return text + (f", {limit} images/split" if limit else "")


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


def baseline_networks(runs, store=None, *, splits=None):
    """(seed, config, trained network, data) for every finished baseline among ``runs`` whose saved network is on
    disk (the results store's ``model_path``); the data set is loaded once, from the first one's config."""
    from .runs import load_checkpoint
    from .networks import build_network

    store = _store(store, runs[0][2].out_dir if runs else "runs")
    for name, seed, config in runs:
        row = store.find(config.hash()) if name == BASELINE else None
        path = Path(row.get("model_path", "")) if row else None
        if path is None or not path.is_file():
            continue
        if splits is None:
            from .data import load_dataset

            splits = load_dataset(config.data, config.root, scale=config.scale, limit=config.limit, progress=False)
        state = load_checkpoint(path)
        net = build_network(config, state["num_classes"], state["crop"])
        net.load_state_dict(state["model"])
        yield seed, config, net, splits


def ensemble_results(runs, results: dict, store=None, *, splits=None) -> dict:
    """Table 2's ensembles from the finished baseline runs: {("ensemble", seed_i): [pair, ...]}.

    For every pair of seeds (i < j) the two baseline networks' centre-crop softmax outputs on the validation set
    are averaged; a pair holds delta_top1/delta_top5 = error(ensemble) − mean error(the two networks), fractions.
    With n seeds there are n(n−1)/2 pairs; ``all`` (under the first seed's key, as the row's note) the ensemble
    of every seed.  Runs whose saved network is missing are left out.  ``splits`` may pass the loaded data.
    """
    from itertools import combinations

    from .evaluate import centre_probabilities, topk_errors

    chosen = [(name, seed, config) for name, seed, config in runs if (BASELINE, seed) in results]
    probs, labels = {}, None
    for seed, config, net, splits in baseline_networks(chosen, store, splits=splits):
        probs[seed] = centre_probabilities(net, splits.val, splits.mean_image, splits.crop)
        labels = splits.val.labels
    out = {}
    if len(probs) < 2:
        return out

    def errors(p):
        e = topk_errors(p, labels)
        return e["top1_error"], e["top5_error"]

    single = {s: errors(p) for s, p in probs.items()}
    for i, j in combinations(sorted(probs), 2):
        e1, e5 = errors((probs[i] + probs[j]) / 2)
        out.setdefault(("ensemble", i), []).append(dict(
            seeds=(i, j), delta_top1=e1 - (single[i][0] + single[j][0]) / 2,
            delta_top5=e5 - (single[i][1] + single[j][1]) / 2))
    all1, all5 = errors(sum(probs.values()) / len(probs))
    out["ensemble_all"] = dict(seeds=tuple(sorted(probs)), top1=all1, top5=all5,
                               mean_single_top1=sum(v[0] for v in single.values()) / len(single),
                               mean_single_top5=sum(v[1] for v in single.values()) / len(single))
    return out


def cached_results(runs, store=None) -> dict:
    """The finished runs among ``runs`` (from ``plan_runs``) found in the results store: {(variant, seed): metrics}."""
    store = _store(store, runs[0][2].out_dir if runs else "runs")
    found, identities = {}, {}
    for name, seed, config in runs:
        row = store.find(config.hash())
        if row is not None and _on_the_same_data(row, config, identities):
            found[(name, seed)] = _row_metrics(row)
    return found


def _on_the_same_data(row: dict, config, identities: dict) -> bool:
    """Whether a stored run was trained on the data ``config`` opens now (rows without a data identity pass);
    ``identities`` memoises the current identity per data set, so a table lists each set once."""
    from .data import dataset_identity, same_data

    if not row.get("data_identity"):
        return True
    key = (config.data, config.root, config.scale, config.limit)
    if key not in identities:
        try:
            identities[key] = dataset_identity(config.data, config.root, scale=config.scale, limit=config.limit)
        except FileNotFoundError:
            identities[key] = None
    return identities[key] is None or same_data(row["data_identity"], identities[key])


def _row_metrics(row: dict) -> dict:
    """A results-store row's final metrics (nested under "metrics" or flat)."""
    return dict(row.get("metrics") or row)


def _store(store, out_dir="runs"):
    """The results store: the one given (or its path), else train's default for ``out_dir``."""
    from .runs import ResultsStore, runs_dir

    if store is None:
        return ResultsStore(runs_dir(out_dir) / "results.jsonl")
    if isinstance(store, (str, Path)):
        return ResultsStore(store)
    return store


def run_ablations(data: str = "auto", scale: str | None = "scaled", budget_epochs: int | None = 2,
                  budget_steps: int | None = None, seeds=(0,), device: str = "auto", ablations=None,
                  limit: int | None = None, store=None, progress: bool = True, on_update=None, *,
                  base: dict | None = None, recipe: str = "paper", train_fn=None, on_run=None, reuse: bool = True):
    """Train the baseline and every variant for each seed, and return the ablation table (§3.1–§7).

    A run already in the results store (same config hash) is read from it, not repeated (``reuse=False``
    hands every run to the trainer); the others go through ``train.train`` (or ``train_fn``, same
    signature, for tests and widgets), which resumes an interrupted run from its checkpoint: calling this
    again after an interruption picks up where it stopped.  ``on_update(table)`` is called
    after each finished run; ``on_run(i, n, name, seed, result)`` too, for progress displays.
    Budget: ``budget_epochs`` epochs, or ``budget_steps`` optimiser steps when given.  ``recipe`` and
    ``base``: the training recipe shared by every run (see ``plan_runs``).
    """
    from tqdm.auto import tqdm

    if train_fn is None:
        from .train import train as train_fn
    chosen = select(ablations)
    runs = plan_runs(data, scale, budget_epochs, budget_steps, seeds, device, chosen, limit, base, recipe)
    store = _store(store, runs[0][2].out_dir)
    seeds = tuple(int(s) for s in seeds)
    meta = dict(data=data, scale=scale or "", budget=budget_text(budget_epochs, budget_steps, runs[0][2].limit))
    results, reused = {}, 0

    def table():
        t = ablation_table(results, chosen, seeds, **meta)
        # the training time of the runs in the table (as each run recorded it, reused or not)
        t.attrs.update(runs=sum(isinstance(v, dict) and "val_top1_error" in v for v in results.values()),
                       runs_reused=reused,
                       train_wall_s=round(sum(m.get("wall_s") or 0.0 for m in results.values()
                                          if isinstance(m, dict)), 1))
        return t

    bar = tqdm(runs, desc="ablation runs", unit="run", disable=not progress)
    wants_ensemble = any(a.kind == "ensemble" for a in chosen)
    for i, (name, seed, config) in enumerate(bar, start=1):
        bar.set_postfix_str(f"{name} seed {seed}")
        row = store.find(config.hash()) if reuse else None
        if row is not None:  # finished before on other data (another archive under the same name): refused
            from .checkpoints import check_same_data

            check_same_data(row.get("data_identity"), config, None, f"the finished run in {row.get('run_dir')}")
        if row is not None:  # finished before: its metrics are all the table needs
            result = SimpleNamespace(config=config, metrics=_row_metrics(row), reused=True)
            reused += 1
        else:
            result = train_fn(config, progress=progress, store=store)
        results[(name, seed)] = dict(result.metrics)
        if on_run is not None:
            on_run(i, len(runs), name, seed, result)
        if on_update is not None:
            on_update(table())
    bar.close()
    if wants_ensemble and len(seeds) > 1:
        ensembles = ensemble_results(runs, results, store)
        results.update(ensembles)
        if ensembles and on_update is not None:
            on_update(table())
    return table()


# --- export -------------------------------------------------------------------------------------------------

def _number(x, std=None, signed=True) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    text = f"{x:+.1f}" if signed else f"{x:.1f}"
    if std is not None and not (isinstance(std, float) and math.isnan(std)):
        text += f" ± {std:.1f}"
    return text.replace("-", "−")


MEASURE_SHORT = {"val": "val top-1", "train": "train error", "gap": "val − train error"}


def display_table(table):
    """The table as the reader sees it: paper and measured deltas (mean ± std) as text, in percentage points."""
    import pandas as pd

    def paper_text(r):
        numbers = " / ".join(t for t in (_number(r.paper_top1), _number(r.paper_top5)) if t)
        return numbers or r.paper_words

    def judged(r):
        if not r.n:
            return "not run yet"
        if r.verdict == "inconclusive" and r.measure == "gap" and r.testable is False:
            return "inconclusive: nothing overfits without it"
        return r.verdict or "no claim (a convention)"

    return pd.DataFrame({
        "ablation": table["ablation"], "section": table["section"], "without the paper's choice": table["change"],
        "paper Δ top-1 / top-5": [paper_text(r) for r in table.itertuples()],
        "measured Δ top-1": [_number(m, s) for m, s in zip(table["measured_top1"], table["measured_top1_std"])],
        "measured Δ top-5": [_number(m, s) for m, s in zip(table["measured_top5"], table["measured_top5_std"])],
        "sign judged on": [MEASURE_SHORT.get(m, m) for m in table["measure"]],
        "measured Δ there": [_number(m, s) for m, s in zip(table["measured_claim"], table["measured_claim_std"])],
        "n": table["n"], "verdict": [judged(r) for r in table.itertuples()],
    })


def to_markdown(table) -> str:
    """A GitHub Markdown table of ``display_table(table)``."""
    shown = display_table(table)
    cells = [[str(c).replace("|", "\\|") for c in row] for row in shown.itertuples(index=False)]
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def _latex_escape(text: str) -> str:
    out = []
    for ch in str(text):
        out.append({"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
                    "±": r"$\pm$", "−": "$-$", "→": r"$\to$", "α": r"$\alpha$", "β": r"$\beta$",
                    "×": r"$\times$", "§": r"\S{}", "ε": r"$\epsilon$"}.get(ch, ch))
    return "".join(out)


def to_latex(table, caption: str = "The paper's ablations, measured (delta in percentage points).") -> str:
    """A LaTeX ``table`` of ``display_table(table)`` (booktabs rules; no jinja2 needed)."""
    shown = display_table(table)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", r"\begin{tabular}{ll p{4.5cm} p{3cm} r r r l}",
             r"\toprule", " & ".join(_latex_escape(c) for c in shown.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(_latex_escape(c) for c in row) + r" \\" for row in shown.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\caption{" + _latex_escape(caption) + "}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def machine_description() -> str:
    """This machine in a few words (``runs.machine``) and the torch version."""
    import torch

    from .runs import machine

    return f"{machine()}, torch {torch.__version__}"


def save_csv(table, path, *, command: str | None = None, configuration: dict | None = None,
             wall_s: float | None = None) -> Path:
    """Write the table as CSV with commented header lines: machine, date, configuration, command, times (atomically).

    ``wall_s`` is the command's wall time; the table's ``attrs`` (from ``run_ablations``) add how many runs it
    holds, how many were reused from the store, and ``train_wall_s``: the training time the runs recorded.
    """
    path = Path(path)
    head = {
        "alexnet-book ablations": "delta = error(with the paper's choice) - error(without it), percentage points",
        "command": command or "",
        "machine": machine_description(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "configuration": json.dumps(configuration or {}, sort_keys=True, default=str),
    }
    if wall_s is not None:
        head["wall_s"] = f"{wall_s:.0f}"
    for key in ("runs", "runs_reused", "train_wall_s"):
        if key in table.attrs:
            head[key] = str(table.attrs[key])
    buffer = io.StringIO()
    for key, value in head.items():
        buffer.write(f"# {key}: {value}\n")
    table.round(4).to_csv(buffer, index=False, lineterminator="\n")  # 0.0001 percentage points is plenty
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_text(path, buffer.getvalue())
    return path


def _atomic_write_text(path: Path, text: str) -> None:
    from .runs import atomic_write_text

    atomic_write_text(path, text)


def load_csv(path):
    """Read a table written by ``save_csv``; its header lines land in ``table.attrs`` (machine, date, command...)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; produce it with `alexnet-book ablate --quick --out {path}`")
    lines = path.read_text().splitlines(keepends=True)
    meta, start = {}, 0
    while start < len(lines) and lines[start].startswith("# "):
        key, _, value = lines[start][2:].rstrip("\n").partition(": ")
        meta[key] = value
        start += 1
    try:
        table = pd.read_csv(io.StringIO("".join(lines[start:])))
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ValueError(f"{path} is not an ablation table ({err}); regenerate it with `alexnet-book ablate`") from None
    if "verdict" not in table.columns and "n" in table.columns:  # a table written before verdicts: one seed is inconclusive by the rule
        table["verdict"] = ["inconclusive" if n and n < 2 else "" for n in table["n"]]
    for column in ("testable", "without_gap"):
        if column not in table.columns:
            table[column] = math.nan
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path} lacks columns {missing}; regenerate it with `alexnet-book ablate`")
    for column in ("sign_agrees", "testable"):
        table[column] = table[column].map({True: True, False: False, "True": True, "False": False})
    table = table.astype({"sign_agrees": object, "testable": object}).where(table.notna(), None)
    for column in ("paper_top1", "paper_top5", "measured_top1", "measured_top1_std", "measured_top5",
                   "measured_top5_std", "measured_claim", "measured_claim_std", "without_gap"):
        table[column] = table[column].astype(float)
    for column in ("claim", "paper_words", "data", "scale", "budget", "measure", "verdict"):
        table[column] = table[column].fillna("")
    table.attrs.update(meta)
    return table


def plot_ablations(table, ax=None):
    """Horizontal bars: the measured top-1 delta (± std over seeds) beside the paper's, per ablation."""
    import matplotlib.pyplot as plt
    import numpy as np

    from .figures import book_style

    with book_style():
        if ax is None:
            fig, ax = plt.subplots(figsize=(6.4, 0.32 * len(table) + 1.2))
        else:
            fig = ax.figure
        y = np.arange(len(table))[::-1]
        paper_top1 = table["paper_top1"].astype(float).to_numpy()
        measured = table["measured_top1"].astype(float).to_numpy()
        std = np.nan_to_num(table["measured_top1_std"].astype(float).to_numpy())
        ax.barh(y + 0.2, np.nan_to_num(paper_top1), height=0.38, color="#bbbbbb", label="paper")
        ax.barh(y - 0.2, np.nan_to_num(measured), height=0.38, xerr=std, color="#1f77b4",
                label="measured", error_kw={"elinewidth": 0.8})
        for yi, p, m in zip(y, paper_top1, measured):
            if np.isnan(p):
                ax.text(0, yi + 0.2, " no number in the paper", va="center", fontsize=6, color="#777777")
            if np.isnan(m):
                ax.text(0, yi - 0.2, " not run yet", va="center", fontsize=6, color="#777777")
        ax.axvline(0, color="black", linewidth=0.8)
        lo, hi = ax.get_xlim()
        ax.set_xlim(lo, max(hi, 0.3 * (hi - lo)))  # room for the notes right of zero
        ax.set_yticks(y, table["ablation"])
        ax.set_xlabel("Δ top-1 error (percentage points) = with − without the paper's choice\n"
                      "negative: the paper's choice helps")
        title = "Ablations: paper vs measured"
        if len(table) and table["data"].iloc[0]:
            title += f" ({table['data'].iloc[0]} {table['scale'].iloc[0]}, {table['budget'].iloc[0]})"
        ax.set_title(title)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def export(table, stem, *, command=None, configuration=None, wall_s=None, figure: bool = True) -> list[Path]:
    """Write ``stem``.csv (with its header), .md and .tex, and the figure through ``figures.save_figure``."""
    import matplotlib.pyplot as plt

    stem = Path(stem)
    stem = stem.with_suffix("") if stem.suffix in (".csv", ".md", ".tex") else stem
    paths = [save_csv(table, stem.with_suffix(".csv"), command=command, configuration=configuration, wall_s=wall_s)]
    for suffix, text in ((".md", to_markdown(table)), (".tex", to_latex(table))):
        _atomic_write_text(stem.with_suffix(suffix), text)
        paths.append(stem.with_suffix(suffix))
    if figure:
        fig = plot_ablations(table)
        paths += save_ablation_figure(fig, table, stem.name if stem.name.startswith("ablations") else
                                      f"ablations_{stem.name}")
        plt.close(fig)
    return paths


def save_ablation_figure(fig, table, name: str) -> list[Path]:
    """Save the measured-vs-paper chart through ``figures.save_figure`` (one caption, CLI and notebook alike)."""
    from .figures import save_figure

    data = table["data"].iloc[0] if len(table) else None
    return save_figure(fig, name, caption="Measured vs claimed top-1 error deltas of the paper's ablations "
                       "(delta = with - without the paper's choice; negative: the choice helps).", data=data,
                       notebook="06_ablations", committed=True)


# --- Tables 1 and 2 ---------------------------------------------------------------------------------------------

def paper_tables(store=None, *, runs: str = "baseline") -> dict:
    """Tables 1 and 2 (§6) in the paper's format -- top-1/top-5 error in % -- with the published reproductions
    (PAPER.md §6), and the reader's finished runs in a table of their own.

    The paper's tables are ILSVRC tables; a CIFAR-10 run (10 classes, where top-5 error says almost nothing) is
    not one of their rows, so the reader's runs are returned apart: ``yours`` holds each run's data set, its
    top-1 error on the centre crop and with 10 crops, and top-5 errors only for data sets with more than 10
    classes.  ``runs``: "baseline" shows only runs of the paper's network with no ablation change (each labelled
    with how its training departs from §5); "all" every finished run; "none" no runs.
    Returns {"table1": DataFrame, "table2": DataFrame, "yours": DataFrame}.
    """
    import pandas as pd

    t1 = [dict(model=m, source="paper", data="ILSVRC-2010 test", top1=a, top5=b) for m, a, b in paper.TABLE1]
    t1.insert(2, dict(model="CNN (no 10-patch averaging)", source="paper", data="ILSVRC-2010 test",
                      top1=paper.TABLE1_CNN_NO_10_PATCH[0], top5=paper.TABLE1_CNN_NO_10_PATCH[1]))
    t2 = [dict(model=m, source="paper", data="ILSVRC-2012", top1_val=a, top5_val=b, top5_test=c)
          for m, a, b, c in paper.TABLE2]
    for name, top1, top5, note in paper.REPRODUCTIONS:
        if "2010" in note:
            t1.append(dict(model=name, source="reproduction", data=note, top1=top1, top5=top5))
        else:
            t2.append(dict(model=name, source="reproduction", data=note, top1_val=top1, top5_val=top5,
                           top5_test=None))
    mine = []
    if runs != "none":
        for row in your_runs(store, baseline_only=(runs == "baseline")):
            many = row["classes"] is None or row["classes"] > 10  # top-5 means something with many classes
            mine.append({"model": row["model"], "data": row["data"], "top-1 centre (%)": row["top1"],
                         "top-1 10 crops (%)": row["top1_10crop"],
                         "top-5 centre (%)": row["top5"] if many else None,
                         "top-5 10 crops (%)": row["top5_10crop"] if many else None})
    table1 = pd.DataFrame(t1, columns=["model", "source", "data", "top1", "top5"])
    table2 = pd.DataFrame(t2, columns=["model", "source", "data", "top1_val", "top5_val", "top5_test"])
    table1 = table1.rename(columns={"top1": "top-1 (%)", "top5": "top-5 (%)"})
    table2 = table2.rename(columns={"top1_val": "top-1 val (%)", "top5_val": "top-5 val (%)",
                                    "top5_test": "top-5 test (%)"})
    yours = pd.DataFrame(mine, columns=["model", "data", "top-1 centre (%)", "top-1 10 crops (%)",
                                        "top-5 centre (%)", "top-5 10 crops (%)"])
    for t, first in ((table1, 3), (table2, 3), (yours, 2)):
        for c in t.columns[first:]:
            t[c] = t[c].astype(float).round(1)
    return {"table1": table1, "table2": table2, "yours": yours}


def your_runs(store=None, *, baseline_only: bool = True) -> list[dict]:
    """The reader's finished runs in the results store as error rates in %: model, data, top1, top5 (+ 10 crops)."""
    try:
        rows = _store(store).table()
    except FileNotFoundError:
        return []
    out = []
    for row in rows.to_dict("records"):
        config = row.get("config") or {}
        if isinstance(config, str):
            config = json.loads(config)
        metrics = _row_metrics(row)
        if baseline_only and not _is_paper_recipe(config):
            continue
        top1, top5 = _metric(metrics, "val_top1_error"), _metric(metrics, "val_top5_error")
        if math.isnan(top1):
            continue
        model = config.get("model", "alexnet")
        options = config.get("model_options") or {}
        label = f"{model} {config.get('scale') or ''}".strip()
        if options:
            label += " (" + ", ".join(f"{k}={v}" for k, v in sorted(options.items())) + ")"
        budget = budget_text(config.get("epochs"), config.get("max_steps"), config.get("limit"))
        recipe = _recipe_changes(config)
        data = str(row.get("data") or config.get("data", ""))
        out.append(dict(model=f"{label}, {budget}, seed {config.get('seed', 0)}" + (f"; {recipe}" if recipe else ""),
                        data=data, classes=10 if data in ("cifar10", "synthetic") else None,
                        top1=100 * top1, top5=100 * top5,
                        top1_10crop=100 * _metric(metrics, "val_top1_error_10crop"),
                        top5_10crop=100 * _metric(metrics, "val_top5_error_10crop")))
    return out


# TrainConfig fields that say where or how long a run ran, not how it trained (left out of a run's label).
_NOT_RECIPE = {"data", "root", "scale", "limit", "epochs", "max_steps", "seed", "device", "out_dir", "ten_crop",
               "log_every", "checkpoint_every", "precision", "channels_last", "compile", "deterministic",
               "eval_every", "model", "model_options"}


def _recipe_changes(config: dict) -> str:
    """How a run's training departs from §5 (TrainConfig's defaults), e.g. "lr=0.03, schedule=linear"."""
    from .config import TrainConfig

    default = TrainConfig()
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(config.items())
                     if k not in _NOT_RECIPE and hasattr(default, k) and getattr(default, k) != v)


def _is_paper_recipe(config: dict) -> bool:
    """A run of the paper's network with the paper's recipe: no ablation's change applied."""
    from .config import TrainConfig

    default = TrainConfig()
    if config.get("model", "alexnet") != "alexnet" or (config.get("model_options") or {}):
        return False
    for name in ("crops_flips", "pca_colour", "weight_decay", "momentum", "batch_size"):
        if name in config and config[name] != getattr(default, name):
            return False
    return True


# --- CLI ----------------------------------------------------------------------------------------------------------

def _preset_text(name: str) -> str:
    p = PRESETS[name]
    budget = budget_text(p["budget_epochs"], p["budget_steps"], p["limit"])
    return (f"recipe {p['recipe']}, data {p['data']}, scale {p['scale']}, {budget}, "
            f"seeds {' '.join(map(str, p['seeds']))}, device {p['device']}")


def cli_main(argv: list[str]) -> int:
    """``alexnet-book ablate``: re-run the paper's ablations and write the table (CSV, Markdown, LaTeX, figure)."""
    parser = argparse.ArgumentParser(
        prog="alexnet-book ablate",
        description="Re-run the paper's ablations (§3.1-§7): the baseline and one run per variant and seed, "
                    "reusing finished runs from the results store and resuming interrupted ones. Delta = "
                    "error(with the paper's choice) - error(without it), in percentage points: the paper's "
                    "claims are negative.",
        epilog="examples:\n"
               "  alexnet-book ablate --list\n"
               "  alexnet-book ablate --quick --out results/ablations_quick.csv\n"
               "  alexnet-book ablate --data cifar10 --scale scaled --epochs 2 --seeds 0 1 2 --only lrn,dropout "
               "--recipe quick --out results/ablations_mine.csv\n"
               "  alexnet-book ablate --full --root /data/imagenet-subset --out results/ablations_full.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    preset = parser.add_mutually_exclusive_group()
    preset.add_argument("--quick", action="store_true",
                        help="the whole table on real CIFAR-10, scaled network, 1 seed, about 22 min on 2 CPU "
                             f"cores: {_preset_text('quick')}")
    preset.add_argument("--full", action="store_true",
                        help=f"the 224 network on an ImageNet subset on a GPU: {_preset_text('full')}")
    preset.add_argument("--study", action="store_true",
                        help="every claim of the paper with 3 seeds at a budget where each can show, on real "
                             f"CIFAR-10, about 2 h on 2 CPU cores: {_preset_text('study')}; writes "
                             "results/ablations_study.csv (+ .md, .tex, figure) unless --out says otherwise")
    preset.add_argument("--smoke", action="store_true",
                        help=f"seconds of compute on synthetic data, to check the plumbing: {_preset_text('smoke')}")
    parser.add_argument("--data", default=None, help="data set name for load_dataset (cifar10, imagenet-subset, "
                        "imagenette, synthetic, auto); default: the preset's, else auto")
    parser.add_argument("--root", default=None, help="folder or archive of the data set (default: load_dataset's "
                        "search: env ALEXNET_BOOK_CIFAR10, ../shared/data, data/)")
    parser.add_argument("--scale", choices=("scaled", "full"), default=None,
                        help="network scale: scaled (32 px, CPU track) or full (224 px, the paper's); default: the preset's, else scaled")
    parser.add_argument("--epochs", type=int, default=None, help="budget in epochs per run (default: the preset's, else 2)")
    parser.add_argument("--steps", type=int, default=None, help="budget in optimiser steps per run; overrides --epochs (default: none)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many images per split, balanced over classes (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds, e.g. --seeds 0 1 2; the table shows mean ± std over them (default: 0)")
    parser.add_argument("--only", default=None,
                        help="comma-separated ablations or claim names (default: all; see --list)")
    parser.add_argument("--device", default=None, help="auto (cuda, mps, cpu), cpu, cuda, cuda:1, mps (default: the preset's, else auto)")
    parser.add_argument("--recipe", default=None, help="training recipe every run starts from (train.RECIPES: "
                        "paper = §5 as written, quick = the book's CPU recipe, smoke); default: the preset's, "
                        "else paper")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help="extra TrainConfig field shared by every run, e.g. --set lr=0.02 (JSON values)")
    parser.add_argument("--store", default=None, help="results store (JSONL) to reuse finished runs from "
                        "(default: <out_dir>/results.jsonl, i.e. runs/results.jsonl, as alexnet-book train)")
    parser.add_argument("--out", default=None,
                        help="write the table here (.csv with machine/date/command header; .md, .tex and the "
                             "figure beside it); the CSV is rewritten after every finished run")
    parser.add_argument("--no-figure", action="store_true", help="do not draw the figure with --out")
    parser.add_argument("--list", action="store_true", help="list the ablations and the paper's numbers, then exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    if args.list:
        for a in ABLATIONS:
            numbers = " / ".join(t for t in (_number(a.paper_top1), _number(a.paper_top5)) if t) or a.paper_words
            print(f"{a.name:<17} {a.section:<13} {a.description}  [paper: {numbers}]")
        return 0
    name = ("quick" if args.quick else "full" if args.full else "study" if args.study else
            "smoke" if args.smoke else None)
    settings = dict(PRESETS[name]) if name else dict(recipe="paper", data="auto", scale="scaled", budget_epochs=2,
                                                     budget_steps=None, seeds=(0,), limit=None, device="auto")
    preset_rows = settings.pop("ablations", None)
    if args.study and args.out is None:
        args.out = str(results_dir() / "ablations_study.csv")
    if args.recipe is not None:
        settings["recipe"] = args.recipe
    for key, value in (("data", args.data), ("scale", args.scale), ("budget_epochs", args.epochs),
                       ("budget_steps", args.steps), ("limit", args.limit), ("device", args.device)):
        if value is not None:
            settings[key] = value
    if args.seeds is not None:
        settings["seeds"] = tuple(args.seeds)
    base = {}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"alexnet-book ablate: --set {item!r} must be FIELD=VALUE, e.g. --set lr=0.02", file=sys.stderr)
            return 2
        try:
            base[key] = json.loads(value)
        except json.JSONDecodeError:
            base[key] = value
    if args.root is not None:
        base["root"] = args.root
    command = "alexnet-book ablate " + " ".join(shlex.quote(a) for a in argv)
    only = args.only or (",".join(preset_rows) if preset_rows else None)
    configuration = {**settings, "base": base, "ablations": only or "all"}
    start = time.time()

    def write(table):
        if args.out:
            save_csv(table, args.out, command=command, configuration=configuration, wall_s=time.time() - start)

    try:
        table = run_ablations(**settings, ablations=only, store=args.store, progress=not args.no_progress,
                              on_update=write, base=base)
    except (ValueError, FileNotFoundError) as err:
        print(f"alexnet-book ablate: {err}", file=sys.stderr)
        return 2
    wall = time.time() - start
    print(display_table(table).to_string(index=False))
    print(f"wall time {wall:.0f} s")
    if args.out:
        paths = export(table, args.out, command=command, configuration=configuration, wall_s=wall,
                       figure=not args.no_figure)
        lrn = trained_lrn_activity(plan_runs(**{k: v for k, v in settings.items() if k != "recipe"},
                                             ablations=only, base=base, recipe=settings["recipe"]), args.store)
        if len(lrn):
            stem = Path(args.out).with_suffix("")
            _atomic_write_text(stem.with_name(stem.name + "_lrn.csv"),
                               f"# command: {command}\n# LRN activity of each seed's trained baseline network, "
                               f"on 256 validation images (alexnet_book.mechanisms)\n"
                               + lrn.round(6).to_csv(index=False, lineterminator="\n"))
            paths.append(stem.with_name(stem.name + "_lrn.csv"))
        print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def trained_lrn_activity(runs, store=None):
    """``mechanisms.lrn_activity`` of every finished baseline network among ``runs`` (one row per seed and LRN
    layer): is LRN really normalising in the networks the table compares?  Empty when none is on disk."""
    import pandas as pd

    from .mechanisms import recipe_lrn_activity

    tables = []
    for seed, config, net, splits in baseline_networks(runs, store):
        t = recipe_lrn_activity(config, splits, net)
        t.insert(0, "seed", seed)
        tables.append(t)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
