"""Tables 1 and 2 (§6) as the paper prints them, the published reproductions, and the reader's own runs."""
from __future__ import annotations

import json
import math

from .. import paper
from .analysis import _metric
from .plan import budget_text
from .runner import _row_metrics, _store


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
    from ..config import TrainConfig

    default = TrainConfig()
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(config.items())
                     if k not in _NOT_RECIPE and hasattr(default, k) and getattr(default, k) != v)


def _is_paper_recipe(config: dict) -> bool:
    """A run of the paper's network with the paper's recipe: no ablation's change applied."""
    from ..config import TrainConfig

    default = TrainConfig()
    if config.get("model", "alexnet") != "alexnet" or (config.get("model_options") or {}):
        return False
    for name in ("crops_flips", "pca_colour", "weight_decay", "momentum", "batch_size"):
        if name in config and config[name] != getattr(default, name):
            return False
    return True
