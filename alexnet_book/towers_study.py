"""Fig. 3's two towers as evidence (issue 16): the ablation study's network trained from five seeds.

``study_config`` is the ablation study's baseline (``ablations.PRESETS["study"]``) with 16 or 48 conv1 kernels
per tower; ``specialisation_evidence`` trains (or reuses) it for every seed and writes
``results/specialisation_study/``, measured with ``towers`` (``evidence.draw_evidence`` draws the committed
Fig. 3 from there).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .ablations import BASELINE, PRESETS, plan_runs
from .towers import (GREY_THRESHOLD, SpecialisationTracker, conv1_kernels, initial_network, kernel_table,
                     pooled_summary, power_table, tower_specialisation)


# The specialisation as evidence (issue 16): the study recipe's two-tower network (docs/ablations.md: 5,000
# CIFAR-10 images, 12 epochs), five seeds, with the scaled net's 16 conv1 kernels per tower (the ablation study's
# baselines, reused from the results store) and with the paper's 48 per tower (``conv1_out=96``), the latter
# traced after every epoch.
SPECIALISATION_EVIDENCE = dict(seeds=(0, 1, 2, 3, 4), kernels_per_tower=(16, 48))
# The budgets the towers are measured at, each into its own results folder.  At the study budget (468 steps)
# conv1 stays at its initialisation (results/specialisation_study: per-epoch trace flat, 1-4% of kernels outside
# random bounds), so the test there cannot see a specialisation; the quick recipe (all 50,000 images, 10 epochs,
# 3,900 steps: the book's trained network, notebooks 04/05) is the next budget up.
SPECIALISATION_BUDGETS = {
    "study": dict(folder="specialisation_study", data="cifar10 (limit 5000)",
                  words="the study recipe: 5,000 CIFAR-10 training images, 12 epochs (docs/ablations.md)"),
    "quick": dict(folder="specialisation_quick", data="cifar10 (50,000 training images)",
                  words="the quick recipe: all 50,000 CIFAR-10 training images, 10 epochs (docs/training.md)"),
}


def study_config(seed: int = 0, kernels_per_tower: int = 16, budget: str = "study"):
    """The baseline TrainConfig for ``seed`` at ``budget`` ("study": the ablation study's baseline; "quick": the
    book's quick recipe, ``config.recipe("quick")``), with ``kernels_per_tower`` conv1 kernels per tower (16: the
    scaled net as it is; otherwise ``model_options["conv1_out"]`` = twice that)."""
    if budget not in SPECIALISATION_BUDGETS:
        raise ValueError(f"budget must be one of {sorted(SPECIALISATION_BUDGETS)}, not {budget!r}")
    if budget == "quick":
        from .config import recipe

        config = recipe("quick", seed=seed)
    else:
        settings = {k: v for k, v in PRESETS["study"].items() if k != "ablations"}
        config = next(c for name, s, c in plan_runs(**{**settings, "seeds": (seed,), "ablations": ["lrn"]})
                      if name == BASELINE)
    if kernels_per_tower != 16:
        config = replace(config, model_options={**config.model_options, "conv1_out": 2 * kernels_per_tower})
    return config


def specialisation_evidence(results_dir=None, *, seeds=SPECIALISATION_EVIDENCE["seeds"],
                            kernels_per_tower=SPECIALISATION_EVIDENCE["kernels_per_tower"], progress: bool = True,
                            store=None, budget: str = "study") -> dict:
    """Train (or reuse) the network at ``budget`` for every seed and kernels-per-tower, and write the evidence to
    ``results/specialisation_<budget>/`` (``SPECIALISATION_BUDGETS``): final.csv (per run), per_epoch.csv (the
    trace; runs reused from the store keep the one recorded when they trained), kernels.csv (every conv1 kernel's scores), pooled.csv (``pooled_summary``),
    power.csv (``power_table`` at 16 and 48 kernels per tower, 1 and len(seeds) runs), conv1_weights.npz (every
    run's conv1 kernels, for the committed Fig. 3), summary.json."""
    import io
    import json
    import platform
    import time

    import pandas as pd

    from .files import atomic_write_bytes, atomic_write_text, machine
    from .runs import results_dir as results_folder
    from .train import train

    folder = results_folder(results_dir) / SPECIALISATION_BUDGETS[budget]["folder"]
    folder.mkdir(parents=True, exist_ok=True)
    # a run reused from the store has no per-epoch trace of its own: keep the one recorded when it trained
    earlier = pd.read_csv(folder / "per_epoch.csv") if (folder / "per_epoch.csv").is_file() else pd.DataFrame()
    started = time.time()
    per_epoch, final, kernels, weights = [], [], [], {}
    for k in kernels_per_tower:
        for seed in seeds:
            cfg = study_config(seed, k, budget)
            tracker = SpecialisationTracker(n_permutations=2000, extra={"kernels_per_tower": k, "seed": seed})
            tracker.measure(initial_network(cfg), epoch=0, step=0)
            t0 = time.time()
            result = train(cfg, progress=progress, callback=tracker, store=store)
            final_row = tower_specialisation(result.model, n_permutations=10_000)
            if not result.reused:
                tracker.rows[-1:] = []  # the last epoch's row is measured again below, with more permutations
            tracker.measure(result.model, epoch=cfg.epochs, step=None)
            recorded = earlier[(earlier.kernels_per_tower == k) & (earlier.seed == seed)] if len(earlier) else earlier
            if result.reused and len(recorded) > len(tracker.rows):
                per_epoch.extend(recorded.to_dict("records"))
            else:
                per_epoch.extend(tracker.rows)
            final.append({"kernels_per_tower": k, "seed": seed, "config_hash": cfg.hash(), "reused": result.reused,
                          "train_seconds": None if result.reused else round(time.time() - t0),
                          "val_top1_error": result.metrics.get("val_top1_error"), **final_row.as_row()})
            kernels.append(kernel_table(result.model, kernels_per_tower=k, seed=seed))
            weights[f"k{k}_seed{seed}"] = conv1_kernels(result.model)[0].numpy()
    kernels = pd.concat(kernels, ignore_index=True)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **weights)  # plain arrays: read back with allow_pickle=False
    atomic_write_bytes(folder / "conv1_weights.npz", buffer.getvalue())
    pooled = pooled_summary(kernels)
    powers = power_table(kernels=(16, 48), runs=(1, len(seeds)), effects=(0.5, 0.8, 1.0, 1.5, 2.0))
    for name, table in (("final", pd.DataFrame(final)), ("per_epoch", pd.DataFrame(per_epoch)),
                        ("kernels", kernels), ("pooled", pooled), ("power", powers)):
        atomic_write_text(folder / f"{name}.csv", table.to_csv(index=False))
    summary = {"command": "alexnet-book figures --specialisation-evidence" + ("" if budget == "study" else f" {budget}"),
               "seeds": list(seeds), "kernels_per_tower": list(kernels_per_tower), "budget": budget,
               "recipe": SPECIALISATION_BUDGETS[budget]["words"],
               "grey_threshold": GREY_THRESHOLD, "machine": machine(), "python": platform.python_version(),
               "wall_seconds": round(time.time() - started), "pooled": pooled.to_dict("records")}
    atomic_write_text(folder / "summary.json", json.dumps(summary, indent=1, default=str) + "\n")
    return {"final": pd.DataFrame(final), "per_epoch": pd.DataFrame(per_epoch), "kernels": kernels,
            "pooled": pooled, "power": powers, "folder": folder}
