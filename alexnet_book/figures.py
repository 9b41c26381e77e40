"""The paper's figures drawn (Figs. 1-4, §6.1 and the looks inside a network), and their export to ``figures/``.

Every figure of the book goes through ``save_figure``: PNG (200 dpi), SVG and PDF, written atomically, with
a line in ``index.json`` saying what it shows, which paper figure it reproduces, which notebook and data drew
it, and from which checkpoint or config.  By default figures go to ``build/figures/`` (not committed: running
the notebooks leaves the tree clean); the evidence commands -- ``alexnet-book figures``, ``alexnet-book ablate
--out`` -- pass ``committed=True`` and write the committed ``figures/``, whose files are never edited by hand.

This module draws and exports only: it trains nothing and imports no experiment.  The experiments draw with its
helpers -- Fig. 1 in ``relu_tanh``, Fig. 3's study in ``towers_study``, Fig. 4's neighbours in ``neighbours``,
the ablations in ``ablations`` -- and ``regenerate`` redraws every library figure headless.
"""
from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
from pathlib import Path

import matplotlib

from .files import atomic_write_bytes, file_lock

# One look for every figure in the book: small, clean, readable when printed beside the paper.
BOOK_STYLE = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "figure.constrained_layout.use": True,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.prop_cycle": matplotlib.cycler(color=["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                                "#8c564b", "#e377c2", "#7f7f7f"]),
    "legend.frameon": False,
    "legend.fontsize": 8,
    "lines.linewidth": 1.5,
    "image.interpolation": "nearest",
    "image.cmap": "viridis",
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.05,
    # deterministic SVG ids, so a regenerated figure does not churn in git
    "svg.hashsalt": "alexnet-book",
    "svg.fonttype": "path",
    "pdf.fonttype": 42,
}
PNG_DPI = 200
FORMATS = ("png", "svg", "pdf")
# No dates or software versions inside the files: the same figure gives the same bytes.
_METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None},
             "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None}}


def book_style():
    """The book's matplotlib style as a context manager: ``with book_style(): fig, ax = plt.subplots()``."""
    return matplotlib.rc_context(BOOK_STYLE)


def figures_dir(path: str | Path | None = None, *, committed: bool = False) -> Path:
    """Where figures go: ``path``, else env ``ALEXNET_BOOK_FIGURES``, else ``<project root>/build/figures``
    (git-ignored: what the notebooks and ``make book`` save), or with ``committed=True`` (the evidence commands,
    ``alexnet-book figures`` and ``ablate --out``) ``<project root>/figures``, the committed folder.

    The project root is the folder holding ``pyproject.toml`` above the package; outside a checkout
    (an installed package) it is the working directory.
    """
    if path is not None:
        return Path(path)
    if os.environ.get("ALEXNET_BOOK_FIGURES"):
        return Path(os.environ["ALEXNET_BOOK_FIGURES"])
    root = Path(__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        root = Path.cwd()
    return root / "figures" if committed else root / "build" / "figures"


def read_index(figures_dir_: str | Path | None = None, *, committed: bool = True) -> dict:
    """The manifest ``index.json`` of a figures folder (default: the committed ``figures/``) as a dict (an empty
    one when there is none yet)."""
    path = figures_dir(figures_dir_, committed=committed) / "index.json"
    if not path.exists():
        return {"figures": {}}
    try:
        index = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); delete it and run `alexnet-book figures`") from None
    index.setdefault("figures", {})
    return index


def save_figure(fig, name: str, *, caption: str, paper_figure: str | None = None, notebook: str | None = None,
                data: str | None = None, config_hash: str | None = None,
                figures_dir: str | Path | None = None, committed: bool = False,
                evidence: dict | None = None) -> list[Path]:
    """Save ``fig`` as ``<name>.png`` (200 dpi), ``.svg`` and ``.pdf`` and record it in ``index.json``.

    The folder is ``figures_dir(figures_dir, committed=committed)``: by default ``build/figures`` (not committed),
    so a notebook run leaves the tree clean; ``committed=True`` is for the evidence commands that refresh the
    committed ``figures/`` on purpose.  ``ALEXNET_BOOK_FIGURES`` overrides both.

    Every file is written atomically (temp file + rename).  The manifest entry holds the files, the caption,
    the paper figure it reproduces (e.g. "Fig. 3"), the notebook and data set that drew it, the checkpoint or
    config hash, the date and the library version; ``evidence`` (for the evidence figures) the results files,
    seeds, budget and command that made it.  The date is kept when the files come out byte-identical,
    so regenerating an unchanged figure changes nothing in git.
    """
    from . import __version__

    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ValueError(f"figure name {name!r} must be a plain file stem such as 'fig3_conv1_filters'")
    out = _figures_dir(figures_dir, committed=committed)
    out.mkdir(parents=True, exist_ok=True)
    paths, digests = [], {}
    with matplotlib.rc_context({"svg.hashsalt": BOOK_STYLE["svg.hashsalt"]}):
        for fmt in FORMATS:
            buffer = io.BytesIO()
            fig.savefig(buffer, format=fmt, dpi=PNG_DPI, metadata=_METADATA[fmt])
            data_bytes = buffer.getvalue()
            path = out / f"{name}.{fmt}"
            atomic_write_bytes(path, data_bytes)
            paths.append(path)
            digests[path.name] = hashlib.sha256(data_bytes).hexdigest()

    with file_lock(out / ".index.json.lock"):  # notebooks run in parallel may update the manifest at once
        index = read_index(out)
        old = index["figures"].get(name, {})
        entry = {
            "files": sorted(digests),
            "caption": caption,
            "paper_figure": paper_figure,
            "notebook": notebook,
            "data": data,
            "config_hash": config_hash,
            "sha256": digests,
            "date": datetime.date.today().isoformat(),
            "library_version": __version__,
        }
        if evidence is not None:
            entry["evidence"] = evidence
        if old.get("sha256") == digests and {k: v for k, v in old.items() if k != "date"} == \
                {k: v for k, v in entry.items() if k != "date"}:
            entry["date"] = old.get("date", entry["date"])  # unchanged figure: no churn
        index["figures"][name] = entry
        index["figures"] = dict(sorted(index["figures"].items()))
        atomic_write_bytes(out / "index.json", (json.dumps(index, indent=2, sort_keys=True) + "\n").encode())
        os.chmod(out / "index.json", 0o644)
    return paths


_figures_dir = figures_dir  # save_figure's keyword argument shadows the function's name inside it


# ---------------------------------------------------------------------------------------------------------
# Fig. 3: the first layer's kernels, tower 1 above tower 2 (§6.1)
# ---------------------------------------------------------------------------------------------------------

FIG3_COLUMNS = 16  # the paper prints 96 kernels as 6 rows of 16: 3 rows per GPU


def filter_grid(weights, columns: int = FIG3_COLUMNS, normalise: str = "kernel", gap: int = 1):
    """Tile (N, 3, k, k) kernels into one RGB image (rows of ``columns`` kernels, ``gap`` white pixels between).

    ``normalise`` "kernel": each kernel stretched on its own to fill [0, 1] (its min → black, max → white),
    so weak kernels stay visible; "global": one stretch for all kernels shown, so their strengths compare;
    "none": values already in [0, 1].
    Either way one affine map is applied to all three channels of a kernel, so its hue is kept.
    """
    import numpy as np
    import torch

    w = torch.as_tensor(weights).detach().float().cpu()
    if w.ndim != 4 or w.shape[1] != 3:
        raise ValueError(f"kernels must have shape (N, 3, k, k), not {tuple(w.shape)}")
    if normalise == "kernel":
        lo = w.amin(dim=(1, 2, 3), keepdim=True)
        hi = w.amax(dim=(1, 2, 3), keepdim=True)
    elif normalise == "global":
        lo, hi = w.min(), w.max()
    elif normalise == "none":  # already in [0, 1]
        lo, hi = torch.tensor(0.0), torch.tensor(1.0)
    else:
        raise ValueError(f"normalise must be 'kernel', 'global' or 'none', not {normalise!r}")
    w = ((w - lo) / (hi - lo).clamp_min(1e-12)).clamp(0, 1)
    n, _, kh, kw = w.shape
    rows = -(-n // columns)
    grid = np.ones((rows * (kh + gap) - gap, columns * (kw + gap) - gap, 3), dtype=np.float32)
    for i in range(n):  # at most a few hundred small tiles: a loop over kernels, not over pixels
        r, c = divmod(i, columns)
        grid[r * (kh + gap):r * (kh + gap) + kh, c * (kw + gap):c * (kw + gap) + kw] = w[i].permute(1, 2, 0).numpy()
    return grid


def plot_conv1_filters(model, *, normalise: str = "kernel", columns: int = FIG3_COLUMNS, towers: int | None = None,
                       title: str | None = None, show_index: bool = True):
    """Fig. 3: the conv1 kernels as a grid, tower 1 (GPU 1) on top, tower 2 (GPU 2) below (§6.1).

    ``model``: any of the book's networks, a state dict or a kernel tensor (see ``towers.conv1_kernels``);
    single-tower networks (``towers=1``, torchvision's, a BVLC import held in one block) get one block.
    The paper prints 16 kernels per row, 3 rows per GPU; ``columns`` changes that.  ``normalise``: "kernel"
    or "global" contrast (see ``filter_grid``).  With ``show_index`` each block's title gives the median
    colour index of its kernels (``towers.colour_index``: 0 grey, 1 colour-opponent).
    """
    import matplotlib.pyplot as plt

    # here, not at the top: ``towers`` imports torch, which the style and export above do not need
    import numpy as np

    from .towers import colour_index, conv1_kernels

    weights, own = conv1_kernels(model)
    towers = towers or own
    if len(weights) % towers:
        raise ValueError(f"{len(weights)} kernels do not split into {towers} towers")
    blocks = weights.chunk(towers)
    per_block = len(blocks[0])
    rows = -(-per_block // columns)
    if normalise == "global":  # one stretch across both towers, so they compare
        lo, hi = weights.min(), weights.max()
        blocks = [((b - lo) / (hi - lo).clamp_min(1e-12)) for b in blocks]
    k = weights.shape[-1]
    with book_style():
        fig, axes = plt.subplots(towers, 1, squeeze=False, figsize=(min(0.42 * columns, 8), 0.45 * rows * towers + 0.5),
                                 layout="constrained")
        for t, (ax, block) in enumerate(zip(axes[:, 0], blocks)):
            grid = filter_grid(block, columns, "kernel" if normalise == "kernel" else "none", gap=max(1, k // 8))
            ax.imshow(grid, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            for side in ax.spines.values():
                side.set_visible(False)
            label = f"tower {t + 1} (GPU {t + 1})" if towers > 1 else "one tower"
            if show_index:
                # numpy's median (the mean of the two middle values), as the tables have it; torch's takes the lower one
                label += f": median colour index {float(np.median(colour_index(block).numpy())):.2f}"
            ax.set_title(label, fontsize=8, loc="left")
        fig.suptitle(title or f"conv1: {len(weights)} kernels of {k}×{k}×3 ({normalise} contrast)", fontsize=9)
    return fig


def plot_colour_index(result, *, title: str | None = None):
    """The per-tower distributions of the conv1 colour index, with the test and effect size (Fig. 3, §6.1).

    ``result``: a ``towers.Specialisation`` (from ``tower_specialisation``).
    """
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    with book_style():
        fig, ax = plt.subplots(figsize=(5.0, 3.0))
        bins = np.linspace(0, 1, 21)
        for t, values in enumerate(result.index):
            ax.hist(values, bins=bins, alpha=0.55, label=f"tower {t + 1} (median {np.median(values):.2f})")
        ax.axvline(2 / 3, color="0.4", lw=0.8, ls=":")
        ax.text(2 / 3, ax.get_ylim()[1] * 0.95, " random kernel", fontsize=7, color="0.4", va="top")
        ax.set_xlabel("colour index (0 = grey, 1 = colour-opponent)")
        ax.set_ylabel("kernels")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="upper left")
        ax.set_title(title or f"Mann-Whitney p = {result.p_mann_whitney:.2g}, Cliff's δ = {result.cliffs_delta:+.2f}",
                     fontsize=9)
    return fig


def plot_specialisation_over_training(table, *, title: str | None = None):
    """How the towers' colour indices and |Cliff's delta| evolve per epoch, one line per seed (§6.1).

    ``table``: ``SpecialisationTracker.table()`` or the per-epoch table of ``specialisation_over_seeds``.
    """
    import matplotlib.pyplot as plt

    if "seed" not in table:
        table = table.assign(seed=0)
    with book_style():
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7.5, 3.0))
        for i, (seed, rows) in enumerate(table.groupby("seed")):
            colour = f"C{i % 8}"
            ax1.plot(rows.epoch, rows.median_tower1, color=colour, ls="-", marker=".", label=f"seed {seed} tower 1")
            ax1.plot(rows.epoch, rows.median_tower2, color=colour, ls="--", marker=".", label=f"seed {seed} tower 2")
            ax2.plot(rows.epoch, rows.effect, color=colour, marker=".", label=f"seed {seed}")
        ax1.axhline(2 / 3, color="0.5", lw=0.8, ls=":")
        ax1.set_xlabel("epoch")
        ax1.set_ylabel("median colour index")
        ax1.legend(fontsize=6)
        ax2.set_xlabel("epoch")
        ax2.set_ylabel("|Cliff's δ| between towers")
        ax2.set_ylim(0, 1)
        ax2.legend(fontsize=6)
        fig.suptitle(title or "The two towers' specialisation during training (Fig. 3, §6.1)", fontsize=9)
    return fig


# ---------------------------------------------------------------------------------------------------------
# Fig. 4: nearest neighbours in the last hidden layer and in pixel space (§6.1); found by ``neighbours``
# ---------------------------------------------------------------------------------------------------------

def _displayable(image):
    """An image for imshow: uint8 HWC as it is; float CHW stretched to [0, 1]."""
    import torch

    image = torch.as_tensor(image).detach().cpu()
    if image.dtype == torch.uint8:
        return image.numpy() if image.shape[-1] == 3 else image.permute(1, 2, 0).numpy()
    image = image.float()
    if image.shape[0] == 3:
        image = image.permute(1, 2, 0)
    return ((image - image.min()) / (image.max() - image.min()).clamp_min(1e-12)).numpy()


def plot_neighbours(query_images, train_images, neighbours, *, class_names=None, query_labels=None,
                    train_labels=None, max_queries: int = 5, title: str | None = None):
    """Fig. 4 (right half), twice: per query, its k nearest training images in ``layer`` and in pixel space (§6.1).

    Each row: the query, then its neighbours in the network's last hidden layer, then in pixel space.  With
    labels, each neighbour is framed green when its class is the query's and red when not, and its class
    is printed under it.  Drawn as one image mosaic (one axes), so it renders fast.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    queries = getattr(query_images, "images", query_images)
    train = getattr(train_images, "images", train_images)
    if query_labels is None and hasattr(query_images, "labels"):
        query_labels = query_images.labels
    if train_labels is None and hasattr(train_images, "labels"):
        train_labels = train_images.labels
    q = min(max_queries, len(neighbours.feature_indices))
    k = neighbours.feature_indices.shape[1]
    name = (lambda y: class_names[int(y)]) if class_names is not None else (lambda y: str(int(y)))
    side = _displayable(queries[0]).shape[0]
    frame = max(1, side // 16)
    cell = side + 2 * frame
    pad, gap = max(2, side // 8), max(6, side // 3)
    columns = [0] + [cell + gap + j * (cell + pad) for j in range(k)]  # query, then the feature block
    columns += [columns[-1] + cell + gap + j * (cell + pad) for j in range(k)]  # then the pixel block
    label_h = max(8, side // 3)
    height, width = q * (cell + label_h), columns[-1] + cell
    mosaic = np.ones((height, width, 3), dtype=np.float32)
    labels_at = []
    for r in range(q):
        cells = [(queries[r], None if query_labels is None else query_labels[r], None)]
        for idx in (neighbours.feature_indices[r], neighbours.pixel_indices[r]):
            cells += [(train[int(i)], None if train_labels is None else train_labels[int(i)], True) for i in idx]
        top = r * (cell + label_h)
        for c, (image, label, is_neighbour) in enumerate(cells):
            left = columns[c]
            colour = (0.2, 0.2, 0.2)
            if is_neighbour and label is not None and query_labels is not None:
                colour = (0.1, 0.6, 0.1) if int(label) == int(query_labels[r]) else (0.85, 0.1, 0.1)
            elif is_neighbour:
                colour = (1.0, 1.0, 1.0)
            mosaic[top:top + cell, left:left + cell] = colour
            img = _displayable(image).astype(np.float32)
            img = img / 255.0 if img.max() > 1.0 else img
            mosaic[top + frame:top + frame + side, left + frame:left + frame + side] = img[:side, :side]
            if label is not None:
                labels_at.append((left + cell / 2, top + cell + 1, name(label)))
    with book_style():
        fig, ax = plt.subplots(figsize=(min(0.55 * (2 * k + 1) + 0.4, 9), 0.75 * q + 0.6))
        ax.imshow(mosaic, interpolation="nearest" if side < 64 else "antialiased")
        for x, y, text in labels_at:
            ax.text(x, y, text, fontsize=4.5, ha="center", va="top")
        ax.text(cell / 2, -2, "test image", fontsize=7, ha="center", va="bottom")
        ax.text((columns[1] + columns[k] + cell) / 2, -2, f"nearest in {neighbours.layer}", fontsize=7,
                ha="center", va="bottom")
        ax.text((columns[k + 1] + columns[2 * k] + cell) / 2, -2, "nearest in pixel space", fontsize=7,
                ha="center", va="bottom")
        ax.set_axis_off()
        summary = neighbours.summary()
        text = f"overlap of the two neighbour sets: {summary['overlap']:.0%}"
        if neighbours.feature_label_agreement is not None:
            text += (f"; same class as the query: {summary[f'{neighbours.layer}_label_agreement']:.0%} in "
                     f"{neighbours.layer}, {summary['pixel_label_agreement']:.0%} in pixels")
        fig.suptitle(title or text, fontsize=7)
    return fig


# ---------------------------------------------------------------------------------------------------------
# Looking inside: training curves, feature maps, per-layer statistics
# ---------------------------------------------------------------------------------------------------------

def per_epoch(history):
    """One row per finished epoch from a run's metrics log: its training error/loss and validation score (§5).

    ``history``: ``RunResult.history``.  ``train`` logs a row every few steps (fractional epoch, that batch's
    error) and one at each epoch's end (integral epoch, the epoch's mean training error and loss); the
    epoch-end rows are kept.
    """
    rows = history[history.epoch == history.epoch.round()]
    if "step" in rows:
        rows = rows.sort_values("step", kind="stable")
    agg = {c: "last" for c in ("step", "lr", "train_loss", "train_error", "val_top1", "val_top5", "time")
           if c in rows}
    out = rows.groupby("epoch", as_index=False).agg(agg)
    out["epoch"] = out["epoch"].round().astype(int)
    return out


def plot_history(history, *, title: str | None = None):
    """Training curves of one run: training error and validation top-1 error per epoch, loss, learning rate (§5)."""
    import matplotlib.pyplot as plt

    epochs = per_epoch(history)
    with book_style():
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7.5, 3.0))
        ax1.plot(epochs.epoch, epochs.train_error, marker=".", label="training error")
        if "val_top1" in epochs and epochs.val_top1.notna().any():
            ax1.plot(epochs.epoch, epochs.val_top1, marker=".", label="validation top-1 error")
        if "val_top5" in epochs and epochs.val_top5.notna().any():
            ax1.plot(epochs.epoch, epochs.val_top5, marker=".", ls="--", label="validation top-5 error")
        ax1.set_xlabel("epoch")
        ax1.set_ylabel("error")
        ax1.set_ylim(0, 1)
        ax1.legend()
        ax2.plot(epochs.epoch, epochs.train_loss, marker=".", color="C3")
        ax2.set_xlabel("epoch")
        ax2.set_ylabel("training loss", color="C3")
        if "lr" in epochs and epochs.lr.notna().any():
            lr = ax2.twinx()
            lr.step(epochs.epoch, epochs.lr, where="post", color="0.5", lw=1)
            lr.set_ylim(bottom=0)
            lr.set_ylabel("learning rate (end of epoch)", color="0.5")
            lr.grid(False)
        fig.suptitle(title or "Training curves (§5)", fontsize=9)
    return fig


def plot_feature_maps(model, image, *, max_maps: int = 16, mean_image=None, crop=None, preprocess=None,
                      title: str | None = None):
    """The feature maps of every conv layer for one input image, after the activation (§3.5, Fig. 2).

    ``image``: one uint8 HWC image (give ``mean_image`` and ``crop``, or ``preprocess``) or a float CHW network
    input.  Shows the first ``max_maps`` maps per layer, each stretched to its own range (grey scale); in a
    two-tower network half come from each tower.  One row (one axes, one mosaic) per layer.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    # here, not at the top: ``import alexnet_book.figures`` stays free of torch (as for ``towers`` above)
    from .features import activation_modules, grouped_twin, input_batches

    if hasattr(model, "grouped_state_dict"):
        model = grouped_twin(model)
    image = torch.as_tensor(image)
    x = next(input_batches(image[None], mean_image, crop, 1, next(model.parameters()).device, preprocess,
                               getattr(model, "input_scale", 1.0)))
    captured = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: captured.setdefault(n, o.detach().cpu().float().clone()))
             for n, m in activation_modules(model)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    maps = {n: o[0] for n, o in captured.items() if o.ndim == 4}
    towers = int(getattr(model, "towers", 1))
    with book_style():
        fig, axes = plt.subplots(len(maps) + 1, 1, squeeze=False, figsize=(min(0.45 * max_maps, 8), 0.55 * (len(maps) + 1) + 0.5))
        axes[0, 0].imshow(_displayable(image if image.dtype == torch.uint8 else x[0]))
        axes[0, 0].set_title("input", fontsize=7, loc="left")
        for row, (name, m) in enumerate(maps.items(), start=1):
            c = m.shape[0]
            if towers > 1:  # half the shown maps from each tower
                per = max_maps // towers
                idx = [t * (c // towers) + j for t in range(towers) for j in range(min(per, c // towers))]
            else:
                idx = list(range(min(max_maps, c)))
            chosen = m[idx][:, None].expand(-1, 3, -1, -1)  # grey maps as RGB tiles
            axes[row, 0].imshow(filter_grid(chosen, columns=len(idx), normalise="kernel", gap=1))
            axes[row, 0].set_title(f"{name}: {len(idx)} of {c} maps, {m.shape[1]}×{m.shape[2]}"
                                   + (f" (left half tower 1, right half tower 2)" if towers > 1 else ""),
                                   fontsize=7, loc="left")
        for ax in axes[:, 0]:
            ax.set_axis_off()
        fig.suptitle(title or "Feature maps after each conv layer's activation", fontsize=8)
    return fig


def plot_layer_statistics(table, *, title: str | None = None):
    """Bars per layer: the weights' standard deviation and, when measured, the share of zero (or saturated) units."""
    import matplotlib.pyplot as plt

    has_acts = "zero_fraction" in table
    with book_style():
        fig, axes = plt.subplots(1, 2 if has_acts else 1, squeeze=False, figsize=(7.5 if has_acts else 4, 2.8))
        ax = axes[0, 0]
        ax.bar(table.layer, table.weight_std, color="C0")
        ax.set_ylabel("weight standard deviation")
        ax.tick_params(axis="x", rotation=45, labelsize=7)
        if has_acts:
            ax = axes[0, 1]
            acts = table.dropna(subset=["zero_fraction"])
            ax.bar(acts.layer, acts.zero_fraction, color="C1", label="exactly zero (ReLU)")
            if acts.saturated_fraction.max() > 0:
                ax.bar(acts.layer, acts.saturated_fraction, color="C2", alpha=0.7, label="saturated (|tanh| > 0.99)")
            ax.set_ylim(0, 1)
            ax.set_ylabel("share of units")
            ax.tick_params(axis="x", rotation=45, labelsize=7)
            ax.legend()
        fig.suptitle(title or "Per-layer weights and activity", fontsize=9)
    return fig
