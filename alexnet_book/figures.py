"""The paper's figures re-drawn from any network (Figs. 1, 3, 4, §6.1), and their export to ``figures/``.

Every figure of the book goes through ``save_figure``: PNG (200 dpi), SVG and PDF, written atomically, with
a line in ``figures/index.json`` saying what it shows, which paper figure it reproduces, which notebook and
data drew it, and from which checkpoint or config.  ``alexnet-book figures`` regenerates the figures the
library draws; files in ``figures/`` are produced by that command and the notebooks, never edited by hand.
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import matplotlib

from . import paper

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


def figures_dir(path: str | Path | None = None) -> Path:
    """Where figures go: ``path``, else env ``ALEXNET_BOOK_FIGURES``, else ``<project root>/figures``.

    The project root is the folder holding ``pyproject.toml`` above the package; outside a checkout
    (an installed package) the figures go to ``./figures``.
    """
    if path is not None:
        return Path(path)
    if os.environ.get("ALEXNET_BOOK_FIGURES"):
        return Path(os.environ["ALEXNET_BOOK_FIGURES"])
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file():
        return root / "figures"
    return Path.cwd() / "figures"


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; figures are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(folder: Path):
    """Hold an exclusive lock on ``folder`` (POSIX); notebooks run in parallel may update the manifest at once."""
    try:
        import fcntl
        fd = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):  # Windows: no lock, the write itself is still atomic
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def read_index(figures_dir_: str | Path | None = None) -> dict:
    """The manifest ``figures/index.json`` as a dict (an empty one when there is none yet)."""
    path = figures_dir(figures_dir_) / "index.json"
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
                figures_dir: str | Path | None = None) -> list[Path]:
    """Save ``fig`` as ``<name>.png`` (200 dpi), ``.svg`` and ``.pdf`` and record it in ``index.json``.

    Every file is written atomically (temp file + rename).  The manifest entry holds the files, the caption,
    the paper figure it reproduces (e.g. "Fig. 3"), the notebook and data set that drew it, the checkpoint or
    config hash, the date and the library version.  The date is kept when the files come out byte-identical,
    so regenerating an unchanged figure changes nothing in git.
    """
    from . import __version__

    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ValueError(f"figure name {name!r} must be a plain file stem such as 'fig3_conv1_filters'")
    out = _figures_dir(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths, digests = [], {}
    with matplotlib.rc_context({"svg.hashsalt": BOOK_STYLE["svg.hashsalt"]}):
        for fmt in FORMATS:
            buffer = io.BytesIO()
            fig.savefig(buffer, format=fmt, dpi=PNG_DPI, metadata=_METADATA[fmt])
            data_bytes = buffer.getvalue()
            path = out / f"{name}.{fmt}"
            _atomic_write(path, data_bytes)
            paths.append(path)
            digests[path.name] = hashlib.sha256(data_bytes).hexdigest()

    with _locked(out):
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
        if old.get("sha256") == digests and {k: v for k, v in old.items() if k != "date"} == \
                {k: v for k, v in entry.items() if k != "date"}:
            entry["date"] = old.get("date", entry["date"])  # unchanged figure: no churn
        index["figures"][name] = entry
        index["figures"] = dict(sorted(index["figures"].items()))
        _atomic_write(out / "index.json", (json.dumps(index, indent=2, sort_keys=True) + "\n").encode())
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
                label += f": median colour index {colour_index(block).median().item():.2f}"
            ax.set_title(label, fontsize=8, loc="left")
        fig.suptitle(title or f"conv1: {len(weights)} kernels of {k}×{k}×3 ({normalise} contrast)", fontsize=9)
    return fig


def plot_colour_index(result, *, title: str | None = None):
    """The per-tower distributions of the conv1 colour index, with the test and effect size (Fig. 3, §6.1).

    ``result``: a ``towers.Specialisation`` (from ``tower_specialisation``).
    """
    import matplotlib.pyplot as plt
    import numpy as np

    with book_style():
        fig, ax = plt.subplots(figsize=(5.0, 3.0))
        bins = np.linspace(0, 1, 21)
        for t, values in enumerate(result.index):
            ax.hist(values, bins=bins, alpha=0.55, label=f"tower {t + 1} (median {np.median(values):.2f})")
        ax.axvline(2 / 3, color="0.4", lw=0.8, ls=":")
        ax.text(2 / 3, ax.get_ylim()[1] * 0.95, " random kernel", fontsize=7, color="0.4", va="top")
        ax.set_xlabel("colour index (0 = grey, 1 = colour-opponent)")
        ax.set_ylabel("kernels")
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
# Fig. 4: nearest neighbours in the last hidden layer and in pixel space (§6.1)
# ---------------------------------------------------------------------------------------------------------

def _grouped_twin(model):
    """A ``TwoDeviceAlexNet`` as the grouped AlexNet computing the same function (one device: hooks just work)."""
    from .model import AlexNet

    twin = AlexNet(**model.options)
    twin.load_state_dict(model.grouped_state_dict(), strict=False)
    return twin


def layer_output_module(model, layer: str = "fc7"):
    """The module whose output is ``layer``'s activity: for a conv or FC layer, the activation right after it.

    "fc7" in AlexNet is the output of fc7 after its ReLU (dropout is off in eval mode): the 4096-d (512-d in
    the scaled net) "last hidden layer" of Fig. 4.  Names are the network's own ("conv3", "pool5", "fc6");
    torchvision's unnamed classifier is read by position (its Linear layers are fc6, fc7, fc8).
    """
    import re

    from torch import nn

    named = dict(model.named_modules())
    target = next((m for name, m in named.items() if name.rsplit(".", 1)[-1] == layer), None)
    if target is None and re.fullmatch(r"fc\d", layer):
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        first = 6 if len(linears) == 3 else 9 - len(linears)
        if 0 <= int(layer[2]) - first < len(linears):
            target = linears[int(layer[2]) - first]
    if target is None:
        names = [n for n in named if n and not list(named[n].children())]
        raise ValueError(f"{type(model).__name__} has no layer {layer!r}; choose one of {names}")
    if isinstance(target, (nn.Conv2d, nn.Linear)):
        for parent in model.modules():
            children = list(parent.children())
            if any(c is target for c in children):
                i = next(j for j, c in enumerate(children) if c is target)
                if i + 1 < len(children) and isinstance(children[i + 1], (nn.ReLU, nn.Tanh)):
                    return children[i + 1]
    return target


def _as_input_batches(images, mean_image, crop, batch_size: int, device):
    """Yield network-ready float batches (N, 3, crop, crop) from uint8 NHWC pixels or float NCHW tensors."""
    import torch

    images = getattr(images, "images", images)
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        if batch.dtype == torch.uint8:
            if mean_image is None or crop is None:
                raise ValueError("uint8 images need mean_image and crop (from load_dataset's DataSplits)")
            from .augment import centre_batch
            yield centre_batch(batch, mean_image, crop, device=device)
        else:
            yield batch.to(device=device, dtype=torch.float32)


def hidden_features(model, images, layer: str = "fc7", *, mean_image=None, crop=None, batch_size: int = 256,
                    device=None):
    """The activity of ``layer`` for every image, flattened to (N, D) (§6.1); "pixels" gives the input itself.

    ``images``: uint8 NHWC pixels (an ``ImageArrays`` or its ``.images``; then pass ``mean_image`` and ``crop``)
    or float NCHW network inputs.  The network runs in eval mode (no dropout) without gradients.
    """
    import torch

    return torch.cat(list(_features_batches(model, images, layer, mean_image, crop, batch_size, device)))


def _features_batches(model, images, layer, mean_image, crop, batch_size, device):
    import torch

    if hasattr(model, "grouped_state_dict"):
        model = _grouped_twin(model)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    module = None if layer == "pixels" else layer_output_module(model, layer)
    captured = []
    hook = module.register_forward_hook(lambda m, i, o: captured.append(o.detach().flatten(1).clone())) \
        if module is not None else None
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for x in _as_input_batches(images, mean_image, crop, batch_size, device):
                if module is None:
                    yield x.flatten(1).float()
                    continue
                model(x)
                yield captured.pop().float()
    finally:
        if hook is not None:
            hook.remove()
        model.train(was_training)


def _merge_topk(best_d, best_i, d, offset: int, k: int):
    """Keep the k smallest distances per row among the old best and a new block of columns."""
    import torch

    idx = torch.arange(offset, offset + d.shape[1], device=d.device).expand(d.shape[0], -1)
    all_d, all_i = torch.cat([best_d, d], 1), torch.cat([best_i, idx], 1)
    top = all_d.topk(min(k, all_d.shape[1]), dim=1, largest=False, sorted=True)
    return top.values, all_i.gather(1, top.indices)


@dataclass
class Neighbours:
    """The k nearest training images of each query, in a hidden layer and in pixel space (Fig. 4, §6.1)."""

    layer: str
    feature_indices: "torch.Tensor"   # (Q, k) training-set indices, nearest first
    feature_distances: "torch.Tensor"  # (Q, k) Euclidean distances in the layer's activity
    pixel_indices: "torch.Tensor"
    pixel_distances: "torch.Tensor"
    overlap: "torch.Tensor"            # (Q,) share of the k feature neighbours that are also pixel neighbours
    feature_label_agreement: "torch.Tensor | None" = None  # (Q,) share of feature neighbours with the query's label
    pixel_label_agreement: "torch.Tensor | None" = None

    def summary(self) -> dict:
        """Means over the queries: how much the two neighbour sets overlap and how often they share the label."""
        out = {"queries": int(self.overlap.numel()), "k": int(self.feature_indices.shape[1]),
               "overlap": float(self.overlap.mean())}
        if self.feature_label_agreement is not None:
            out[f"{self.layer}_label_agreement"] = float(self.feature_label_agreement.mean())
            out["pixel_label_agreement"] = float(self.pixel_label_agreement.mean())
        return out


def nearest_neighbours(model, query_images, train_images, k: int = paper.FIG4_NEIGHBOURS, layer: str = "fc7", *,
                       mean_image=None, crop=None, query_labels=None, train_labels=None, batch_size: int = 256,
                       device=None, progress: bool = False) -> Neighbours:
    """Fig. 4: the ``k`` training images nearest to each query, Euclidean, in ``layer`` and in pixel space (§6.1).

    The paper: "the six training images that produce feature vectors in the last hidden layer with the
    smallest Euclidean distance from the feature vector for the test image".  ``layer="fc7"`` is fc7's output
    after its ReLU, in eval mode (no dropout).  Pixel space is the network's input (the centre crop minus the
    mean image; subtracting the same mean leaves distances between images unchanged).

    Distances are computed block by block with ``torch.cdist`` (‖a‖² + ‖b‖² − 2ab as one matrix product per
    block), the training set streamed in batches with a running top-k, so memory stays at one block and no
    Python loop runs over pairs.  Images: uint8 NHWC (``ImageArrays`` or tensors; give ``mean_image`` and
    ``crop``) or float NCHW network inputs.  Labels (taken from ``ImageArrays`` when given) add the share of
    neighbours that share the query's class in each space.
    """
    import torch
    from tqdm.auto import tqdm

    if query_labels is None and hasattr(query_images, "labels"):
        query_labels = query_images.labels
    if train_labels is None and hasattr(train_images, "labels"):
        train_labels = train_images.labels
    queries = list(_features_batches(model, query_images, layer, mean_image, crop, batch_size, device))
    q_feat = torch.cat(queries)
    q_pix = torch.cat(list(_as_input_batches(query_images, mean_image, crop, batch_size, q_feat.device))).flatten(1)
    # Distances do not change when both sides move by the same vector; centring on the queries' mean keeps
    # ‖a‖² + ‖b‖² − 2ab from cancelling catastrophically when activities share a large common part (fc biases).
    f_centre, p_centre = q_feat.mean(0), q_pix.mean(0)
    q_feat, q_pix = q_feat - f_centre, q_pix - p_centre
    q = len(q_feat)
    empty = lambda: (torch.empty(q, 0, device=q_feat.device), torch.empty(q, 0, dtype=torch.long, device=q_feat.device))
    (fd, fi), (pd_, pi) = empty(), empty()
    offset = 0
    n_train = len(getattr(train_images, "images", train_images))
    pixels = _as_input_batches(train_images, mean_image, crop, batch_size, q_feat.device)
    feats = _features_batches(model, train_images, layer, mean_image, crop, batch_size, device)
    bar = tqdm(total=n_train, desc=f"neighbours ({layer} and pixels)", disable=not progress, unit="img")
    for x, f in zip(pixels, feats):
        fd, fi = _merge_topk(fd, fi, torch.cdist(q_feat, f.to(q_feat.device) - f_centre), offset, k)
        pd_, pi = _merge_topk(pd_, pi, torch.cdist(q_pix, x.flatten(1) - p_centre), offset, k)
        offset += len(x)
        bar.update(len(x))
    bar.close()
    if offset < k:
        raise ValueError(f"only {offset} training images: cannot find {k} neighbours")
    fi, pi, fd, pd_ = fi.cpu(), pi.cpu(), fd.cpu(), pd_.cpu()
    overlap = (fi[:, :, None] == pi[:, None, :]).any(2).float().mean(1)
    result = Neighbours(layer, fi, fd, pi, pd_, overlap)
    if query_labels is not None and train_labels is not None:
        ql, tl = torch.as_tensor(query_labels).cpu(), torch.as_tensor(train_labels).cpu()
        result.feature_label_agreement = (tl[fi] == ql[:, None]).float().mean(1)
        result.pixel_label_agreement = (tl[pi] == ql[:, None]).float().mean(1)
    return result


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


def plot_neighbours(query_images, train_images, neighbours: Neighbours, *, class_names=None, query_labels=None,
                    train_labels=None, max_queries: int = 5, title: str | None = None):
    """Fig. 4 (right half), twice: per query, its k nearest training images in ``layer`` and in pixel space (§6.1).

    Each row: the query, then its neighbours in the network's last hidden layer, then in pixel space.
    With labels, a neighbour's class is printed under it, green when it matches the query's, red when not.
    """
    import matplotlib.pyplot as plt

    queries = getattr(query_images, "images", query_images)
    train = getattr(train_images, "images", train_images)
    if query_labels is None and hasattr(query_images, "labels"):
        query_labels = query_images.labels
    if train_labels is None and hasattr(train_images, "labels"):
        train_labels = train_images.labels
    q = min(max_queries, len(neighbours.feature_indices))
    k = neighbours.feature_indices.shape[1]
    name = (lambda y: class_names[int(y)]) if class_names is not None else (lambda y: str(int(y)))
    with book_style():
        fig, axes = plt.subplots(q, 2 * k + 1, squeeze=False, figsize=(0.62 * (2 * k + 1) + 0.3, 0.78 * q + 0.5),
                                 gridspec_kw={"wspace": 0.05, "hspace": 0.35}, layout="none")
        for r in range(q):
            cells = [(queries[r], None if query_labels is None else query_labels[r], "query")]
            for space, idx in (("fc", neighbours.feature_indices[r]), ("px", neighbours.pixel_indices[r])):
                cells += [(train[int(i)], None if train_labels is None else train_labels[int(i)], space) for i in idx]
            for c, (ax, (image, label, space)) in enumerate(zip(axes[r], cells)):
                ax.imshow(_displayable(image))
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                for side in ax.spines.values():
                    side.set_visible(space == "query")
                    side.set_linewidth(2)
                if label is not None:
                    same = query_labels is not None and int(label) == int(query_labels[r])
                    ax.set_xlabel(name(label), fontsize=5, labelpad=1,
                                  color="black" if space == "query" else ("green" if same else "red"))
        axes[0, 0].set_title("test image", fontsize=7)
        axes[0, 1 + k // 2].set_title(f"nearest in {neighbours.layer}", fontsize=7)
        axes[0, 1 + k + k // 2].set_title("nearest in pixel space", fontsize=7)
        summary = neighbours.summary()
        text = f"overlap of the two neighbour sets: {summary['overlap']:.0%}"
        if neighbours.feature_label_agreement is not None:
            text += (f"; same class as the query: {summary[f'{neighbours.layer}_label_agreement']:.0%} in "
                     f"{neighbours.layer}, {summary['pixel_label_agreement']:.0%} in pixels")
        fig.suptitle(title or text, fontsize=7)
        fig.subplots_adjust(left=0.01, right=0.99, top=0.88, bottom=0.05)
    return fig


# ---------------------------------------------------------------------------------------------------------
# Looking inside: training curves, feature maps, per-layer statistics
# ---------------------------------------------------------------------------------------------------------

def per_epoch(history):
    """One row per epoch from a run's metrics log: the last logged train error/loss and validation score (§5).

    ``history``: ``RunResult.history`` (columns step, epoch, lr, train_loss, train_error, val_top1, ...).
    """
    rows = history.sort_values(["epoch", "step"] if "step" in history else ["epoch"])
    agg = {c: "last" for c in ("step", "lr", "train_loss", "train_error", "val_top1", "val_top5", "time")
           if c in rows}
    return rows.groupby("epoch", as_index=False).agg(agg)


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
            lr.set_yscale("log")
            lr.set_ylabel("learning rate", color="0.5")
            lr.grid(False)
        fig.suptitle(title or "Training curves (§5)", fontsize=9)
    return fig


def _weight_layers(model):
    """(name, module) of every conv and FC layer in order, in the paper's names (torchvision's are numbered)."""
    from torch import nn

    out, convs, fcs = [], 0, 0
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            convs, fcs = convs + isinstance(module, nn.Conv2d), fcs + isinstance(module, nn.Linear)
            own = name.rsplit(".", 1)[-1]
            out.append((own if not own.isdigit() else
                        f"conv{convs}" if isinstance(module, nn.Conv2d) else f"fc{convs + fcs}", module))
    return out


def _activation_modules(model):
    """(layer name, activation module) for every conv/FC layer followed by a ReLU or tanh."""
    from torch import nn

    follows = {}
    for parent in model.modules():
        children = list(parent.children())
        for a, b in zip(children, children[1:]):
            if isinstance(b, (nn.ReLU, nn.Tanh)):
                follows[id(a)] = b
    return [(name, follows[id(m)]) for name, m in _weight_layers(model) if id(m) in follows]


def plot_feature_maps(model, image, *, max_maps: int = 16, mean_image=None, crop=None, title: str | None = None):
    """The feature maps of every conv layer for one input image, after the activation (§3.5, Fig. 2).

    ``image``: one uint8 HWC image (give ``mean_image`` and ``crop``) or a float CHW network input.  Shows
    the first ``max_maps`` maps per layer; in a two-tower network half come from each tower.
    """
    import matplotlib.pyplot as plt
    import torch

    if hasattr(model, "grouped_state_dict"):
        model = _grouped_twin(model)
    image = torch.as_tensor(image)
    x = next(_as_input_batches(image[None], mean_image, crop, 1, next(model.parameters()).device))
    captured = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: captured.setdefault(n, o.detach().cpu().clone()))
             for n, m in _activation_modules(model)]
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
        fig, axes = plt.subplots(len(maps) + 1, max_maps, squeeze=False,
                                 figsize=(0.5 * max_maps, 0.6 * (len(maps) + 1) + 0.4), layout="none",
                                 gridspec_kw={"wspace": 0.05, "hspace": 0.3})
        for ax in axes.flat:
            ax.axis("off")
        axes[0, 0].imshow(_displayable(image if image.dtype == torch.uint8 else x[0]))
        axes[0, 0].set_title("input", fontsize=6, loc="left")
        for row, (name, m) in enumerate(maps.items(), start=1):
            c = m.shape[0]
            if towers > 1:  # half the shown maps from each tower
                per = max_maps // towers
                idx = [t * (c // towers) + j for t in range(towers) for j in range(min(per, c // towers))]
            else:
                idx = list(range(min(max_maps, c)))
            for col, i in enumerate(idx):
                axes[row, col].imshow(m[i].numpy(), cmap="gray")
            axes[row, 0].set_title(f"{name}: {c} maps of {m.shape[1]}×{m.shape[2]}"
                                   + (f" (towers split at {c // towers})" if towers > 1 else ""), fontsize=6, loc="left")
        fig.suptitle(title or "Feature maps after each conv layer's activation", fontsize=8)
        fig.subplots_adjust(left=0.01, right=0.99, top=0.9, bottom=0.01)
    return fig


def layer_statistics(model, images=None, *, mean_image=None, crop=None, batch_size: int = 128):
    """Per layer: weight statistics, and with ``images`` the activity after each ReLU/tanh (§3.1, §5).

    Columns: layer, parameters, weight_mean, weight_std, bias_mean, and with images act_mean, act_std,
    zero_fraction (ReLU units exactly 0: the sparsity §3.1 relies on) and saturated_fraction (|tanh| > 0.99:
    where a saturating unit's gradient vanishes).  Weight statistics are those of the conv/linear layer the
    activation follows.
    """
    import pandas as pd
    import torch
    from torch import nn

    if hasattr(model, "grouped_state_dict"):
        model = _grouped_twin(model)
    rows = []
    for name, layer in _weight_layers(model):
        w = layer.weight.detach().float()
        rows.append(dict(layer=name, parameters=sum(p.numel() for p in layer.parameters()),
                         weight_mean=w.mean().item(), weight_std=w.std().item(),
                         bias_mean=layer.bias.detach().float().mean().item() if layer.bias is not None else 0.0))
    acts = _activation_modules(model)
    table = pd.DataFrame(rows)
    if images is None:
        return table
    sums = {n: torch.zeros(4, dtype=torch.float64) for n, _ in acts}  # Σx, Σx², #zero, #saturated; counts below
    counts = dict.fromkeys(sums, 0)

    def record(name, is_tanh):
        def hook(mod, inputs, output):
            o = output.detach().double()
            sums[name] += torch.stack([o.sum(), (o * o).sum(), (o == 0).sum().double(),
                                       (o.abs() > 0.99).sum().double() if is_tanh else o.new_tensor(0.0)])
            counts[name] += o.numel()
        return hook

    hooks = [m.register_forward_hook(record(n, isinstance(m, nn.Tanh))) for n, m in acts]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            for x in _as_input_batches(images, mean_image, crop, batch_size, device):
                model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    stats = []
    for n, _ in acts:
        s, count = sums[n], max(counts[n], 1)
        mean = (s[0] / count).item()
        stats.append(dict(layer=n, act_mean=mean, act_std=max((s[1] / count).item() - mean ** 2, 0.0) ** 0.5,
                          zero_fraction=(s[2] / count).item(), saturated_fraction=(s[3] / count).item()))
    return table.merge(pd.DataFrame(stats), on="layer", how="left")


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
