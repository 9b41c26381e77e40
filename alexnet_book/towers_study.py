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
from .towers import (GREY_THRESHOLD, LARGE_EFFECT_D, SpecialisationTracker, conv1_kernels, initial_network,
                     kernel_table, pooled_summary, power, power_table, specialisation_verdict, tower_specialisation)


# The specialisation as evidence (issue 16): the study recipe's two-tower network (docs/ablations.md: 5,000
# CIFAR-10 images, 12 epochs), five seeds, with the scaled net's 16 conv1 kernels per tower (the ablation study's
# baselines, reused from the results store) and with the paper's 48 per tower (``conv1_out=96``), the latter
# traced after every epoch.  The paper's 48 per tower run first: at the quick budget (≈ 25 min a run on 2 cores)
# a session that stops half-way has the paper's configuration over all five seeds, written after every run.
SPECIALISATION_EVIDENCE = dict(seeds=(0, 1, 2, 3, 4), kernels_per_tower=(48, 16))
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
    trace), kernels.csv (every conv1 kernel's scores), pooled.csv (``pooled_summary``), power.csv (``power_table``
    at 16 and 48 kernels per tower, 1 and len(seeds) runs), conv1_weights.npz (every run's conv1 kernels, for the
    committed Fig. 3), summary.json (``complete`` false until every planned run is in).

    Written again after every run, so a long evidence run that stops keeps what it measured; a run already in
    the folder (same config hash, with its kernels and weights) is reused from there untrained -- the runs folder
    may not outlive the machine, the committed folder does -- and one in the results store is reused from the
    store (its per-epoch trace then kept from the folder).  final.csv's ``source`` says which: trained, store or
    recorded."""
    import time

    from .train import train

    folder = results_folder_for(results_dir, budget)
    folder.mkdir(parents=True, exist_ok=True)
    earlier = recorded_specialisation(folder)
    started = time.time()
    done = {"final": [], "per_epoch": [], "kernels": [], "weights": {}}
    plan = [(k, seed) for k in kernels_per_tower for seed in seeds]

    def keep(old):
        k, seed = int(old["final"]["kernels_per_tower"]), int(old["final"]["seed"])
        done["final"].append({**old["final"], "source": "recorded"})
        done["per_epoch"].extend(old["per_epoch"])
        done["kernels"].append(old["kernels"])
        done["weights"][f"k{k}_seed{seed}"] = old["weights"]

    # every run the folder holds stays in it from the first write on: those beyond this plan (another
    # kernels-per-tower or seed set) and those of the plan, which are not trained again
    planned_hashes = {study_config(seed, k, budget).hash() for k, seed in plan}
    for config_hash, old in earlier.items():
        if config_hash not in planned_hashes:
            keep(old)
    beyond = len(done["final"])
    for config_hash, old in earlier.items():
        if config_hash in planned_hashes:
            keep(old)
    write = dict(budget=budget, seeds=seeds, kernels_per_tower=kernels_per_tower, planned=len(plan),
                 beyond=beyond, started=started)
    if done["final"]:  # the summary names this plan (runs_done of runs_planned) before anything trains
        _write_specialisation(folder, done, **write)
    for k, seed in plan:
        cfg = study_config(seed, k, budget)
        if cfg.hash() not in earlier:
            _measure_run(cfg, k, seed, train, store, progress, earlier_trace(folder, k, seed), done)
            _write_specialisation(folder, done, **write)
    return _write_specialisation(folder, done, **write)


def results_folder_for(results_dir, budget: str):
    """``results/specialisation_<budget>/`` (``SPECIALISATION_BUDGETS``) under ``results_dir``."""
    from .runs import results_dir as results_folder

    if budget not in SPECIALISATION_BUDGETS:
        raise ValueError(f"budget must be one of {sorted(SPECIALISATION_BUDGETS)}, not {budget!r}")
    return results_folder(results_dir) / SPECIALISATION_BUDGETS[budget]["folder"]


def earlier_trace(folder, k: int, seed: int) -> list[dict]:
    """The per-epoch rows recorded in ``folder`` for one run (kept when the run is reused from the store)."""
    import pandas as pd

    path = folder / "per_epoch.csv"
    if not path.is_file() or not path.read_text().strip():
        return []
    rows = pd.read_csv(path)
    return rows[(rows.kernels_per_tower == k) & (rows.seed == seed)].to_dict("records")


def recorded_specialisation(folder) -> dict:
    """The runs an evidence folder holds in full -- final row, kernel rows and conv1 weights -- by config hash:
    {hash: {"final": row, "per_epoch": rows, "kernels": DataFrame, "weights": array}}.  A folder written before
    this one could be resumed (no weights for a run, a missing file) gives only the runs it has in full."""
    import pandas as pd

    files = {name: folder / f"{name}.csv" for name in ("final", "per_epoch", "kernels")}
    weights_file = folder / "conv1_weights.npz"
    if not all(p.is_file() and p.read_text().strip() for p in files.values()) or not weights_file.is_file():
        return {}
    final, per_epoch, kernels = (pd.read_csv(files[n]) for n in ("final", "per_epoch", "kernels"))
    recorded = {}
    with np.load(weights_file, allow_pickle=False) as stored:
        for row in final.to_dict("records"):
            k, seed, name = int(row["kernels_per_tower"]), int(row["seed"]), f"k{int(row['kernels_per_tower'])}_seed{int(row['seed'])}"
            mine = kernels[(kernels.kernels_per_tower == k) & (kernels.seed == seed)]
            if name not in stored.files or mine.empty or not isinstance(row.get("config_hash"), str):
                continue
            recorded[row["config_hash"]] = {
                "final": row, "kernels": mine.reset_index(drop=True), "weights": stored[name],
                "per_epoch": per_epoch[(per_epoch.kernels_per_tower == k) & (per_epoch.seed == seed)].to_dict("records")}
    return recorded


def _measure_run(cfg, k: int, seed: int, train, store, progress: bool, trace: list, done: dict) -> None:
    """Train (or reuse from the store) one run and add its rows to ``done``, its conv1 traced after every epoch."""
    import time

    tracker = SpecialisationTracker(n_permutations=2000, extra={"kernels_per_tower": k, "seed": seed})
    tracker.measure(initial_network(cfg), epoch=0, step=0)
    t0 = time.time()
    result = train(cfg, progress=progress, callback=tracker, store=store)
    final_row = tower_specialisation(result.model, n_permutations=10_000)
    if not result.reused:
        tracker.rows[-1:] = []  # the last epoch's row is measured again below, with more permutations
    tracker.measure(result.model, epoch=cfg.epochs, step=None)
    # a run reused from the store has no per-epoch trace of its own: keep the one recorded when it trained
    done["per_epoch"].extend(trace if result.reused and len(trace) > len(tracker.rows) else tracker.rows)
    done["final"].append({"kernels_per_tower": k, "seed": seed, "config_hash": cfg.hash(), "reused": result.reused,
                          "source": "store" if result.reused else "trained",
                          "train_seconds": None if result.reused else round(time.time() - t0),
                          "val_top1_error": result.metrics.get("val_top1_error"), **final_row.as_row()})
    done["kernels"].append(kernel_table(result.model, kernels_per_tower=k, seed=seed))
    done["weights"][f"k{k}_seed{seed}"] = conv1_kernels(result.model)[0].numpy()


def _group_verdict(row: dict, powers, planned_seeds: int) -> str:
    """``towers.specialisation_verdict`` for a group with every planned seed ('' while it is being measured), with
    the power at d = 0.8 from ``powers`` (``power_table``) or computed for a group size it does not hold."""
    if row["runs"] < planned_seeds:
        return ""
    k, runs = int(row["kernels_per_tower"]), int(row["runs"])
    hit = powers[(powers.kernels_per_tower == k) & (powers.runs == runs)] if len(powers) else powers
    column = f"d={LARGE_EFFECT_D:g}"
    large = float(hit[column].iloc[0]) if len(hit) and column in hit else power(k, LARGE_EFFECT_D, runs=runs)
    return specialisation_verdict(row, large)


def _write_specialisation(folder, done: dict, *, budget: str, seeds, kernels_per_tower, planned: int,
                          started: float, beyond: int = 0) -> dict:
    """Write the folder from the runs in ``done`` (each file atomically); the tables, as ``specialisation_evidence``
    returns them.  ``beyond``: how many of ``done``'s runs were recorded outside this plan (kept, not planned)."""
    import io
    import json
    import platform
    import time

    import pandas as pd

    from .files import atomic_write_bytes, atomic_write_text, machine

    kernels = pd.concat(done["kernels"], ignore_index=True)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **done["weights"])  # plain arrays: read back with allow_pickle=False
    atomic_write_bytes(folder / "conv1_weights.npz", buffer.getvalue())
    pooled = pooled_summary(kernels)
    powers = power_table(kernels=(16, 48), runs=(1, len(seeds)), effects=(0.5, 0.8, 1.0, 1.5, 2.0))
    pooled["verdict"] = [_group_verdict(row, powers, len(seeds)) for row in pooled.to_dict("records")]
    final, per_epoch = pd.DataFrame(done["final"]), pd.DataFrame(done["per_epoch"])
    for name, table in (("final", final), ("per_epoch", per_epoch), ("kernels", kernels), ("pooled", pooled),
                        ("power", powers)):
        atomic_write_text(folder / f"{name}.csv", table.to_csv(index=False))
    command = "alexnet-book figures --specialisation-evidence" + ("" if budget == "study" else f" {budget}")
    if tuple(kernels_per_tower) != tuple(SPECIALISATION_EVIDENCE["kernels_per_tower"]):
        command += " --kernels-per-tower " + " ".join(str(k) for k in kernels_per_tower)
    summary = {"command": command,
               "seeds": list(seeds), "kernels_per_tower": list(kernels_per_tower), "budget": budget,
               "recipe": SPECIALISATION_BUDGETS[budget]["words"], "runs_done": len(final) - beyond,
               "runs_planned": planned, "runs_beyond_plan": beyond, "complete": len(final) - beyond == planned,
               "grey_threshold": GREY_THRESHOLD, "machine": machine(), "python": platform.python_version(),
               "wall_seconds": round(time.time() - started), "pooled": pooled.to_dict("records")}
    atomic_write_text(folder / "summary.json", json.dumps(summary, indent=1, default=str) + "\n")
    return {"final": final, "per_epoch": per_epoch, "kernels": kernels, "pooled": pooled, "power": powers,
            "folder": folder}
