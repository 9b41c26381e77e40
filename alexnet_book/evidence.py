"""The committed figures as evidence: drawn from the evidence runs' result files, never from the quick runs.

Three evidence runs write their numbers under ``results/`` (each resumable; finished training runs are reused
from the results store):

* ``relu_tanh.fig1_evidence``      → ``results/fig1_authors_<layout>/``  (Fig. 1 in the authors' configuration)
* ``towers_study.specialisation_evidence`` → ``results/specialisation_<budget>/`` (Fig. 3's two towers, five seeds;
  the committed Fig. 3 comes from the most-trained budget present: quick, else study)
* ``neighbours.fig4_evidence``     → ``results/fig4_study/``            (Fig. 4's neighbours of a study network)

``draw_evidence`` turns whichever of them are present into the committed ``figures/`` with a manifest entry
naming the results folder, the seeds, the budget and the command (``alexnet-book figures --evidence``).  The
notebooks open with these figures; their own runs are the reader's quick re-run and draw into build/.

This module sits above the experiments (``relu_tanh``, ``towers_study``, ``neighbours``) and the drawing
(``figures``): it reads their result files and draws with them.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .figures import book_style, figures_dir, per_epoch, plot_conv1_filters, plot_neighbours, save_figure
from .neighbours import FIG4_FOLDER, Neighbours, subset
from .relu_tanh import FIG1_EVIDENCE, ReluVsTanh, _key, epochs_to_error, plot_relu_vs_tanh, recorded_runs
from .runs import results_dir
from .towers import chromatic_score
from .towers_study import SPECIALISATION_BUDGETS, study_config

EVIDENCE_COMMAND = "alexnet-book figures --evidence"
FIG1_FOLDERS = ("fig1_authors_18pct", "fig1_full_paper_init")  # the authors' net first, then the book's
SPECIALISATION_FOLDER = SPECIALISATION_BUDGETS["study"]["folder"]


def complete_kernel_counts(folder: Path) -> list[int]:
    """The kernels-per-tower values whose runs ``folder`` holds for every seed its summary plans (sorted): the
    groups a figure may be drawn from while others of the same budget are still being measured."""
    final = _read_csv(folder / "kernels.csv")  # one row per kernel: its group and seed
    if final.empty or "kernels_per_tower" not in final:
        return []
    seeds = {int(s) for s in _summary(folder).get("seeds", final.seed.unique())}
    return sorted(int(k) for k, rows in final.groupby("kernels_per_tower") if seeds <= {int(s) for s in rows.seed})


def specialisation_budget(root: Path) -> str:
    """The most-trained budget whose towers evidence is in ``root`` with every seed for at least one
    kernels-per-tower ("quick", else "study", whose folder is looked for even when absent).  A group still being
    measured (some of its seeds in) is not drawn until all its seeds are (``complete_kernel_counts``)."""
    for budget in ("quick", "study"):
        folder = root / SPECIALISATION_BUDGETS[budget]["folder"]
        if (folder / "kernels.csv").is_file() and complete_kernel_counts(folder):
            return budget
    return "study"


def _partial_groups(folder: Path) -> str:
    """The kernels-per-tower groups of ``folder`` with some but not all of their seeds, in words ('' if none)."""
    final = _read_csv(folder / "kernels.csv")
    if final.empty:
        return ""
    planned = len(_summary(folder).get("seeds", final.seed.unique()))
    done = set(complete_kernel_counts(folder))
    return "; ".join(f"{int(k)} per tower: {rows.seed.nunique()} of {planned} seeds measured so far, not drawn"
                     for k, rows in final.groupby("kernels_per_tower") if int(k) not in done)


def _summary(folder: Path) -> dict:
    """A results folder's summary.json ({} when it has none)."""
    path = folder / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _read_csv(path):
    import pandas as pd

    return pd.read_csv(path) if Path(path).is_file() and Path(path).read_text().strip() else pd.DataFrame()


# ---------------------------------------------------------------------------------------------------------------
# Drawing


def plot_specialisation_study(kernels, per_epoch, *, title: str | None = None):
    """Fig. 3's towers over seeds: each run's chromatic scores per tower (left, one column per seed and tower
    size) and the mean chromatic score per tower after every epoch (right), from ``specialisation_evidence``."""
    import matplotlib.pyplot as plt
    import torch

    groups = sorted(kernels.kernels_per_tower.unique())
    with book_style():
        fig, axes = plt.subplots(1, len(groups) + 1, figsize=(3.3 * (len(groups) + 1), 3.1))
        for ax, k in zip(axes, groups):
            rows = kernels[kernels.kernels_per_tower == k]
            seeds = sorted(rows.seed.unique())
            for i, seed in enumerate(seeds):
                for t, colour in ((1, "0.35"), (2, "C1")):
                    y = rows[(rows.seed == seed) & (rows.tower == t)].chromatic.to_numpy()
                    x = i + (t - 1.5) * 0.35 + np.linspace(-0.08, 0.08, len(y))
                    ax.plot(x, y, ".", ms=2.5, color=colour, label=f"tower {t}" if i == 0 else None)
                    ax.plot([x.min(), x.max()], [y.mean()] * 2, "-", color=colour, lw=1.5)
            ax.set_xticks(range(len(seeds)), [str(s) for s in seeds])
            ax.set_xlabel("seed")
            ax.set_ylabel("chromatic score (0 grey, 1 one hue)")
            ax.set_ylim(-0.02, 1.0)
            ax.set_title(f"{k} conv1 kernels per tower", fontsize=9)
            ax.legend(fontsize=7, loc="upper right")
        ax = axes[-1]
        trace = per_epoch[per_epoch.kernels_per_tower == max(groups)] if "kernels_per_tower" in per_epoch else per_epoch
        for i, (seed, rows) in enumerate(trace.groupby("seed")):
            rows = rows.sort_values("epoch")
            ax.plot(rows.epoch, rows.chromatic_tower1, "-", color=f"C{i}", lw=1, label=f"seed {seed}")
            ax.plot(rows.epoch, rows.chromatic_tower2, "--", color=f"C{i}", lw=1)
        noise = float(chromatic_score(torch.randn(4000, 3, 5, 5, generator=torch.Generator().manual_seed(0))).mean())
        ax.axhline(noise, color="0.5", lw=0.8, ls=":")
        # at the axes' left edge whatever epochs are drawn: at x = 0 in data, a trace without epoch 0 put the
        # label outside the axes and the layout collapsed
        ax.text(0.01, noise, " random 5×5 kernels", fontsize=6, color="0.4", va="bottom",
                transform=ax.get_yaxis_transform())
        ax.set_xlabel("epoch (solid tower 1, dashed tower 2)")
        ax.set_ylabel("mean chromatic score")
        ax.set_title(f"during training, {max(groups)} per tower", fontsize=9)
        ax.legend(fontsize=6)
        if title:
            fig.suptitle(title, fontsize=9)
    return fig


def fig1_status(tuning, epochs, chosen: dict, tuning_seed: int) -> str:
    """Fig. 1's evidence in words while it is unfinished: per activation the rate chosen (or the best so far while a
    rate is still being tried: ``tuning.state`` "in progress"), the seeds finished at it, and the ratio over the
    seeds that have both curves.  ``tuning`` without a state column is all finished."""
    words = []
    state = tuning.state if "state" in tuning else ["finished"] * len(tuning)
    tuning = tuning.assign(state=list(state))
    finished = tuning[tuning.state == "finished"]
    for activation in ("relu", "tanh"):
        rows = tuning[tuning.activation == activation]
        if activation in chosen:
            seeds = epochs[["seed", activation]].dropna()
            spread = (f"; seeds {', '.join(str(int(s)) for s in seeds.seed)}: median {seeds[activation].median():.2f} "
                      f"epochs ({seeds[activation].min():.2f}-{seeds[activation].max():.2f})") if len(seeds) else \
                "; no seed finished at it yet"
            running = rows[rows.state == "in progress"]
            if len(running):  # a rate still being tried may yet win: the choice is not made
                still = ", ".join(f"{r.lr:g} ({r.final_train_error:.1%} after {r.epochs_run} epochs)"
                                  for r in running.itertuples())
                best = float(finished[(finished.activation == activation)].epochs_to_target.min())
                words.append(f"{activation}: best so far {chosen[activation]:g} ({best:.1f} epochs) on seed "
                             f"{tuning_seed}, still trying {still}{spread}")
            else:
                words.append(f"{activation}: rate {chosen[activation]:g} chosen on seed {tuning_seed}{spread}")
        else:
            tried = "; ".join(f"{r.lr:g}: {r.final_train_error:.1%} after {r.epochs_run} epochs ({r.state})"
                              for r in rows.itertuples())
            words.append(f"{activation}: tuning on seed {tuning_seed}, none at 25% yet ({tried})")
    both = epochs.dropna(subset=[c for c in ("relu", "tanh") if c in epochs]) if {"relu", "tanh"} <= set(epochs) \
        else epochs.iloc[:0]
    if len(both):
        ratio = both.tanh / both.relu
        words.append(f"tanh/ReLU on the {len(both)} seed(s) with both curves: median {ratio.median():.1f}× "
                     f"({ratio.min():.1f}-{ratio.max():.1f}), not yet the result")
    return "; ".join(words)


def _fig1_caption(result, summary: dict, folder: str) -> str:
    both = [c for c in ("relu", "tanh") if c in result.epochs]
    done = int(result.epochs[both].notna().all(axis=1).sum()) if len(both) == 2 else 0  # seeds with both curves
    planned = len(summary.get("seeds_planned", result.epochs.seed))
    state = "" if summary.get("complete", True) else f" [partial: {done} of {planned} seeds finished]"
    if summary.get("status"):  # a snapshot of a run still going: its own words, no ratio yet
        return f"{_LAYOUT_NAMES.get(result.layout, result.layout)}: {summary['status']}{state} ({folder})"
    if not summary.get("complete", True):  # saved by the evidence run after a seed: the same words, from its tables
        words = fig1_status(result.tuning, result.epochs, result.lr,
                            summary.get("settings", {}).get("tuning_seed", "?"))
        return f"{_LAYOUT_NAMES.get(result.layout, result.layout)}: {words}{state} ({folder})"
    return f"{_LAYOUT_NAMES.get(result.layout, result.layout)}: {result}{state} ({folder})"


_LAYOUT_NAMES = {"18pct": "the authors' four-layer net (cuda-convnet layers-18pct without LRN, raw 32×32, fp32)",
                 "book": "the book's four-layer net (max pooling, N(0, 0.01), JPEGs at 36 cropped to 32, bf16)"}


def draw_evidence(figures=None, results=None, *, progress: bool = True) -> list[str]:
    """Draw every evidence figure whose results are present into the committed ``figures/`` (or ``figures``);
    returns their names.  Missing results are reported and skipped, never drawn from other runs."""
    import matplotlib.pyplot as plt

    root = results_dir(results)
    drawn = []

    def save(fig, name, caption, paper_figure, notebook, *, sources, seeds, budget, data, config_hash=None):
        save_figure(fig, name, caption=caption, paper_figure=paper_figure, notebook=notebook, data=data,
                    config_hash=config_hash, figures_dir=figures, committed=True,
                    evidence={"results": sources, "seeds": seeds, "budget": budget, "command": EVIDENCE_COMMAND})
        plt.close(fig)
        drawn.append(name)
        if progress:
            print(f"saved {name} (from {', '.join(sources)})")

    _save_fig1(root, save, progress=progress)
    _save_fig3(root, save, progress=progress)
    _save_fig4(root, save, progress=progress)
    return drawn


def _save_fig1(root: Path, save, *, progress: bool) -> None:
    """Fig. 1: ReLU vs tanh from every results folder present (the authors' net first, then the book's)."""
    fig1 = []
    for folder in FIG1_FOLDERS:
        if (root / folder / "summary.json").is_file():
            result = ReluVsTanh.load(root / folder)
            summary = json.loads((root / folder / "summary.json").read_text())
            fig1.append((folder, result, summary))
        elif progress:
            print(f"no results/{folder}: run `alexnet-book figures --fig1-evidence 18pct` (Fig. 1 left out)")
    if fig1:
        fig = plot_relu_vs_tanh([r for _, r, _ in fig1])
        for ax, (_, r, s) in zip(fig.axes, fig1):
            ratio = r.ratio_text() if s.get("complete", True) and not s.get("status") else "partial"
            ax.set_title({"18pct": "authors' net (layers-18pct)", "book": "book's net"}.get(r.layout, r.layout)
                         + f": tanh/ReLU {ratio}", fontsize=8)
        caption = ("Training error of the four-layer CIFAR-10 net, ReLU (solid) vs tanh (dashed), every seed. "
                   + " | ".join(_fig1_caption(r, s, f"results/{f}") for f, r, s in fig1))
        def cap(s):  # the epochs each activation may run: one number, or one per activation
            epochs = s.get("settings", {}).get("epochs", s.get("epochs_run"))
            return ", ".join(f"{a} {e}" for a, e in epochs.items()) if isinstance(epochs, dict) else f"{epochs}"

        budgets = [f"{f}: all 50,000 CIFAR-10 training images, up to {cap(s)} epochs, stop at 25%" for f, _, s in fig1]
        save(fig, "fig1_relu_vs_tanh", caption, "Fig. 1", "07_relu_vs_tanh",
             sources=[f"results/{f}" for f, _, _ in fig1],
             seeds={f: [int(x) for x in r.epochs.seed] for f, r, _ in fig1 if len(r.epochs)},
             budget="; ".join(budgets), data="cifar10 (50,000 training images)")


def _save_fig3(root: Path, save, *, progress: bool) -> None:
    """Fig. 3: the two towers over seeds, and the conv1 kernels of one study network with 48 per tower."""
    import torch

    budget_name = specialisation_budget(root)
    where = SPECIALISATION_BUDGETS[budget_name]
    spec = root / where["folder"]
    ks = complete_kernel_counts(spec)  # only groups with every seed are drawn
    if ks:
        kernels, per_epoch = _read_csv(spec / "kernels.csv"), _read_csv(spec / "per_epoch.csv")
        pooled = _read_csv(spec / "pooled.csv")
        kernels, per_epoch, pooled = (t[t.kernels_per_tower.isin(ks)] if "kernels_per_tower" in t else t
                                      for t in (kernels, per_epoch, pooled))
        partial = _partial_groups(spec)
        words = "; ".join(f"{int(p.kernels_per_tower)} per tower, {int(p.runs)} seeds: pooled permutation p = "
                          f"{p.p_pooled_chromatic:.2g} (chromatic score), {p.p_pooled_grey:.2g} (near-grey share), "
                          f"median |Cliff's δ| {p.median_effect:.2f}"
                          + (f", verdict {p.verdict}" if isinstance(getattr(p, "verdict", None), str) and p.verdict else "")
                          for p in pooled.itertuples())
        seeds = sorted(int(s) for s in kernels.seed.unique())
        budget = where["words"]
        save(plot_specialisation_study(kernels, per_epoch), "fig3_specialisation_study",
             f"Chromatic score of every conv1 kernel per tower and seed, and its course during training: {words}"
             + (f" ({partial})" if partial else ""),
             "Fig. 3", "05_filters_and_towers", sources=[f"results/{where['folder']}"], seeds=seeds,
             budget=budget, data=where["data"])
        weights_file = spec / "conv1_weights.npz"
        if weights_file.is_file():
            with np.load(weights_file, allow_pickle=False) as stored:
                names = sorted(stored.files)
                name = next((n for n in names if n.startswith(f"k{max(kernels.kernels_per_tower)}_")), names[0])
                weights = torch.from_numpy(stored[name])
            fig = plot_conv1_filters(weights, towers=2)
            save(fig, "fig3_conv1_filters_study",
                 f"The conv1 kernels of a {budget_name}-budget network ({name.replace('_', ', ')}), tower 1 above tower 2",
                 "Fig. 3", "05_filters_and_towers", sources=[f"results/{where['folder']}/conv1_weights.npz"],
                 seeds=[int(name.split("seed")[-1])], budget=budget, data=where["data"])
    elif progress:
        print(f"no results/{SPECIALISATION_FOLDER}: run `alexnet-book figures --specialisation-evidence` "
              f"(Fig. 3 left out)")


def _save_fig4(root: Path, save, *, progress: bool) -> None:
    """Fig. 4: the neighbours, with the images read from the data set by index."""
    f4 = root / FIG4_FOLDER
    if (f4 / "neighbours.csv").is_file():
        fig = _draw_fig4(f4, progress=progress)
        if fig is not None:
            summary = json.loads((f4 / "summary.json").read_text())
            agreement = (f"over {summary['queries']} validation images, {summary['fc7_label_agreement']:.1%} of the "
                         f"fc7 neighbours share the query's class, {summary['pixel_label_agreement']:.1%} of the "
                         f"pixel neighbours; overlap of the two sets {summary['overlap']:.1%}")
            save(fig, "fig4_neighbours", f"Five validation images and their six nearest training images in fc7 "
                 f"(after ReLU) and in pixel space, a study network: {agreement}", "Fig. 4", "08_neighbours",
                 sources=[f"results/{FIG4_FOLDER}"], seeds=[summary.get("seed", 0)],
                 budget="the study recipe: 5,000 CIFAR-10 training images, 12 epochs",
                 data=summary.get("data"), config_hash=summary.get("config_hash"))
    elif progress:
        print(f"no results/{FIG4_FOLDER}: run `alexnet-book figures --fig4-evidence` (Fig. 4 left out)")


def _draw_fig4(folder: Path, *, progress: bool):
    """The Fig. 4 grid from neighbours.csv: the images come from the data set (by index), nothing is trained."""
    import torch

    from .data import load_dataset

    table = _read_csv(folder / "neighbours.csv")
    summary = json.loads((folder / "summary.json").read_text())
    config = study_config(summary.get("seed", 0), summary.get("kernels_per_tower", 16))
    try:
        splits = load_dataset(config.data, config.root, scale=config.scale, limit=config.limit, progress=False)
    except FileNotFoundError as missing:
        if progress:
            print(f"Fig. 4 left out: its images need the data set ({str(missing).splitlines()[0]})")
        return None
    queries = sorted(table["query"].unique())
    shown = [queries[i * len(queries) // 5] for i in range(5)] if len(queries) >= 5 else queries
    val_index = [int(table[table["query"] == q].val_index.iloc[0]) for q in shown]

    def grid(space, column):
        rows = table[(table.space == space) & table["query"].isin(shown)].sort_values(["query", "rank"])
        return torch.tensor(rows[column].to_numpy()).reshape(len(shown), -1)

    result = Neighbours("fc7", grid("fc7", "train_index"), grid("fc7", "distance").float(),
                        grid("pixels", "train_index"), grid("pixels", "distance").float(),
                        overlap=torch.zeros(len(shown)))
    queries_arr = subset(splits.val, torch.tensor(val_index))
    return plot_neighbours(queries_arr, splits.train, result, class_names=splits.class_names)


def status(results=None) -> "pandas.DataFrame":
    """Which evidence is present: one row per results folder with its seeds and whether it is complete."""
    import pandas as pd

    root = results_dir(results)
    rows = []
    towers = tuple(b["folder"] for b in SPECIALISATION_BUDGETS.values())
    for folder in (*FIG1_FOLDERS, *towers, FIG4_FOLDER):
        path = root / folder / "summary.json"
        summary = json.loads(path.read_text()) if path.is_file() else None
        rows.append({"results": f"results/{folder}", "present": summary is not None,
                     "complete": bool(summary.get("complete", True)) if summary else False,
                     "seeds": summary.get("seed_list", summary.get("seeds")) if summary else None,
                     "runs": f"{summary['runs_done']} of {summary['runs_planned']}"
                     if summary and "runs_done" in summary else None})
    return pd.DataFrame(rows)


SHOWN = {"fig1": ("fig1_relu_vs_tanh",), "fig3": ("fig3_specialisation_study", "fig3_conv1_filters_study"),
         "fig4": ("fig4_neighbours",)}


def describe(which: str, results=None) -> str:
    """The evidence numbers behind a figure in words ("fig1", "fig3", "fig4"), read from results/; what to run
    when they are not there yet."""
    import pandas as pd

    root = results_dir(results)
    lines = []
    if which == "fig1":
        for folder in FIG1_FOLDERS:
            if not (root / folder / "summary.json").is_file():
                lines.append(f"results/{folder}: not measured yet (alexnet-book figures --fig1-evidence 18pct)")
                continue
            result = ReluVsTanh.load(root / folder)
            summary = json.loads((root / folder / "summary.json").read_text())
            lines.append(_fig1_caption(result, summary, f"results/{folder}"))
            tuning = result.tuning
            if len(tuning):
                for activation, rows in tuning.groupby("activation"):
                    tried = ", ".join(
                        f"{r.lr:g}: {r.epochs_to_target:.1f}" if r.epochs_to_target == r.epochs_to_target
                        and r.epochs_to_target != float("inf") else
                        f"{r.lr:g}: not within {int(getattr(r, 'epochs_run', summary.get('epochs_run', 0)))}"
                        + (" (still running)" if getattr(r, "state", "") == "in progress" else
                           " (stopped: could no longer win)" if getattr(r, "capped", False) else "")
                        for r in rows.itertuples())
                    lines.append(f"  tuning {activation} (epochs to 25%): {tried}; chosen {result.lr.get(activation)}")
    elif which == "fig3":
        budget = specialisation_budget(root)
        folder = root / SPECIALISATION_BUDGETS[budget]["folder"]
        if not (folder / "pooled.csv").is_file():
            return f"results/{SPECIALISATION_FOLDER}: not measured yet (alexnet-book figures --specialisation-evidence)"
        lines.append(f"results/{folder.name} ({SPECIALISATION_BUDGETS[budget]['words']}):")
        ks = complete_kernel_counts(folder)
        final, pooled = (t[t.kernels_per_tower.isin(ks)] if "kernels_per_tower" in t else t
                         for t in (_read_csv(folder / "final.csv"), _read_csv(folder / "pooled.csv")))
        with pd.option_context("display.width", 160, "display.max_columns", 20):
            cols = ["kernels_per_tower", "seed", "val_top1_error", "chromatic_tower1", "chromatic_tower2",
                    "grey_tower1", "grey_tower2", "p_permutation", "cliffs_delta"]
            lines.append(final[[c for c in cols if c in final]].round(3).to_string(index=False))
            lines.append(pooled.round(4).to_string(index=False))
        partial = _partial_groups(folder)
        if partial:
            lines.append(f"results/{folder.name}: {partial}")
        for other, where in SPECIALISATION_BUDGETS.items():  # a better-trained budget still being measured
            path = root / where["folder"] / "summary.json"
            summary = json.loads(path.read_text()) if other != budget and path.is_file() else {}
            if not summary.get("complete", True):
                lines.append(f"results/{where['folder']} ({where['words']}): {summary.get('runs_done')} of "
                             f"{summary.get('runs_planned')} runs measured so far; drawn when all are in "
                             f"({summary.get('command')} continues it)")
    elif which == "fig4":
        path = root / FIG4_FOLDER / "summary.json"
        if not path.is_file():
            return f"results/{FIG4_FOLDER}: not measured yet (alexnet-book figures --fig4-evidence)"
        s = json.loads(path.read_text())
        lines.append(f"{s['queries']} validation images, k = {s['k']}: fc7 neighbours share the query's class "
                     f"{s['fc7_label_agreement']:.1%}, pixel neighbours {s['pixel_label_agreement']:.1%}, overlap "
                     f"{s['overlap']:.1%} ({s['data']}, config {s['config_hash']})")
    else:
        raise ValueError(f"which must be one of {sorted(SHOWN)}, not {which!r}")
    return "\n".join(lines)


def show(which: str, figures=None, results=None) -> None:
    """In a notebook: the committed evidence figure(s) for ``which`` and their numbers (``describe``)."""
    from IPython.display import Image, display

    folder = figures_dir(figures, committed=True)
    for name in SHOWN[which]:
        png = folder / f"{name}.png"
        if png.is_file():
            display(Image(filename=str(png)))
        else:
            print(f"{png} is not drawn yet: alexnet-book figures --evidence")
    print(describe(which, results))


def fig1_snapshot(layout: str = "18pct", results=None, *, out_dir: str = "runs") -> dict:
    """Write what Fig. 1's evidence run has measured so far to ``results/fig1_authors_<layout>/`` while it is not
    finished (``complete`` false): every run of its configuration in the runs folder -- tuning runs on the tuning
    seed and the reported seeds -- with each curve as far as it got and whether the run is finished.  Reads run
    folders only; trains nothing.  ``fig1_evidence`` overwrites it with the finished result."""
    import pandas as pd

    from .runs import ResultsStore, runs_dir
    from .config import TrainConfig

    settings = FIG1_EVIDENCE[layout]
    store_hashes = {row.get("config_hash") for row in ResultsStore(runs_dir(out_dir) / "results.jsonl").rows()}
    curves, tuning, runs = [], [], []
    for folder in sorted(runs_dir(out_dir).glob(f"{settings['data']}-fourlayer-*")):
        try:
            config = TrainConfig.from_dict(json.loads((folder / "config.json").read_text()))
            history = pd.read_csv(folder / "metrics.csv")
        except (OSError, ValueError):
            continue
        if config.model_options.get("layout") != layout or config.model_options.get("init") != settings["init"] \
                or config.limit != settings["limit"]:
            continue
        errors = per_epoch(history).train_error.tolist()
        activation = config.model_options["activation"]
        reached = epochs_to_error(errors)
        state = "finished" if config.hash() in store_hashes or reached != float("inf") else "in progress"
        runs.append(dict(activation=activation, lr=config.lr, seed=config.seed, epochs_run=len(errors),
                         epochs_to_target=reached, final_train_error=errors[-1] if errors else float("nan"),
                         capped=config.max_steps is not None, state=state))
        curves += [dict(activation=activation, seed=config.seed, lr=config.lr, epoch=e, train_error=err)
                   for e, err in enumerate(errors, start=1)]
    # runs measured before, kept in the committed folder (an earlier machine's runs folder is gone): a run the
    # runs folder also holds is taken from there
    folder = results_dir(results) / f"fig1_authors_{layout}"
    seen = {_key(r["activation"], r["lr"], r["seed"]) for r in runs}
    for (activation, lr, seed), old in recorded_runs(folder, settings).items():
        if (activation, lr, seed) in seen:
            continue
        errors = old.get("errors")
        row = old.get("row") or dict(epochs_run=len(errors), epochs_to_target=epochs_to_error(errors),
                                     final_train_error=errors[-1], capped=False)
        runs.append(dict(activation=activation, lr=lr, seed=seed, epochs_run=int(row["epochs_run"]),
                         epochs_to_target=float(row["epochs_to_target"]),
                         final_train_error=float(row["final_train_error"]), capped=bool(row["capped"]),
                         state="finished"))
        curves += [dict(activation=activation, seed=seed, lr=lr, epoch=e, train_error=err)
                   for e, err in enumerate(errors or [], start=1)]
    runs = pd.DataFrame(runs)
    if runs.empty:
        raise FileNotFoundError(f"no runs of the {layout} Fig. 1 configuration in {runs_dir(out_dir)}; start "
                                f"`alexnet-book figures --fig1-evidence {layout}`")
    tuning = runs[runs.seed == settings["tuning_seed"]].sort_values(["activation", "lr"])
    finished = tuning[tuning.state == "finished"]
    chosen = {a: float(r.sort_values(["epochs_to_target", "final_train_error"]).lr.iloc[0])
              for a, r in finished[finished.epochs_to_target < float("inf")].groupby("activation")}
    reported = runs[runs.seed.isin(settings["seeds"]) & (runs.state == "finished")
                    & runs.apply(lambda r: chosen.get(r.activation) == r.lr, axis=1)]
    epochs = reported.pivot_table(index="seed", columns="activation", values="epochs_to_target").reset_index()
    for activation in ("relu", "tanh"):
        if activation not in epochs:
            epochs[activation] = float("nan")
    epochs["ratio"] = epochs.tanh / epochs.relu
    shown = pd.DataFrame(curves)
    keep = shown.apply(lambda r: (r.seed in settings["seeds"] and chosen.get(r.activation) == r.lr)
                       or (r.seed == settings["tuning_seed"] and r.activation not in chosen), axis=1)
    result = ReluVsTanh(init=settings["init"], target=0.25, lr=chosen, tuning=tuning,
                        curves=shown[keep], epochs=epochs[["seed", "relu", "tanh", "ratio"]], config_hashes=[],
                        data=settings["data"], layout=layout)
    status_text = fig1_status(tuning, epochs, chosen, settings["tuning_seed"])
    result.save(folder, command=f"alexnet-book figures --fig1-evidence {layout}", settings=dict(settings),
                seeds_planned=list(settings["seeds"]), complete=False, status=status_text,
                runs=runs.to_dict("records"))
    return {"folder": folder, "status": status_text, "runs": runs}
