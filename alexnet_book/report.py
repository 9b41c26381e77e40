"""The network reported (§3.5, Fig. 2): per-layer tables, counts beside the paper's, input sizes, variants side
by side, the towers drawn, and forward speed.

``summary`` runs one image through a network with a hook on every layer; the other tables and ``tower_diagram``
are built on it.  The networks themselves are in ``model``.
"""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from . import paper
from .layers import LocalResponseNorm
from .model import AlexNet, CeilPad, TwoDeviceAlexNet


def summary(model: nn.Module, input_size: int | None = None) -> "pandas.DataFrame":
    """Per-layer table: output shape, neurons, parameters, forward MACs per image, and tower connectivity (§3.5).

    MACs count multiply-accumulates of conv and linear layers (a grouped kernel sees in_channels/groups maps).
    "connects" (two-tower nets only) says what a layer's kernels read: "image" (conv1: each tower sees the whole
    image), "tower" (only their own tower's maps: no communication) or "cross-tower" (both towers' maps: the
    GPUs communicate here, Fig. 2).  Layers whose own name is a bare index (torchvision's) keep their full name.
    """
    import pandas as pd

    if isinstance(model, TwoDeviceAlexNet):
        raise ValueError("summarise the grouped AlexNet with the same options instead")
    size = input_size or getattr(model, "input_size", 224)
    rows, hooks = [], []
    towers = getattr(model, "towers", 1)
    first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)

    def record(name, module):
        def hook(mod, inputs, output):
            params = sum(p.numel() for p in mod.parameters(recurse=False))
            macs = 0
            connects = ""
            if isinstance(mod, nn.Conv2d):
                k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
                macs = output[0].numel() * k
                if towers > 1:
                    connects = "image" if mod is first_conv else "tower" if mod.groups > 1 else "cross-tower"
                else:
                    connects = "-"
            elif isinstance(mod, nn.Linear):
                macs = mod.in_features * mod.out_features
                connects = "cross-tower" if towers > 1 else "-"
            elif isinstance(mod, LocalResponseNorm):
                connects = f"within {mod.towers} tower(s)" if mod.towers > 1 else "all channels"
            rows.append(dict(layer=name, type=type(mod).__name__, output=tuple(output.shape[1:]),
                             neurons=output[0].numel(), parameters=params, macs=macs, connects=connects))
        return hook

    for name, module in model.named_modules():
        if name and not list(module.children()):
            hooks.append(module.register_forward_hook(record(name, module)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            model(torch.zeros(1, 3, size, size, device=device))
    except RuntimeError as error:
        raise ValueError(f"a {size}×{size} image does not fit this network ({str(error).splitlines()[0]}); "
                         f"use its input size, {getattr(model, 'input_size', 224)}") from None
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    df = pd.DataFrame(rows)
    df["layer"] = df["layer"].str.replace(r"^(features|classifier)\.(?!\d+$)", "", regex=True)
    return df


def count_parameters(model: nn.Module) -> int:
    """Number of learned parameters (weights and biases), §3.5: 60,965,224 for ``AlexNet()``."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: int | None = None) -> int:
    """Forward multiply-accumulates per image (≈0.724 G for ``AlexNet()``)."""
    return int(summary(model, input_size)["macs"].sum())


PAPER_LAYERS = tuple(name for name, *_ in paper.CONV_LAYERS) + tuple(name for name, _ in paper.FC_LAYERS)


def weighted_layers(table: "pandas.DataFrame") -> "pandas.DataFrame":
    """The conv and linear rows of a ``summary`` table with their paper names (conv1…conv5, fc6…fc8).

    Layers already named so keep their names (``remove="conv3"`` leaves conv1, conv2, conv4, conv5); others
    (torchvision's ``features.0`` …) are named by their order.
    """
    rows = table[table["type"].isin(["Conv2d", "Linear"])].copy()
    convs = (rows["type"] == "Conv2d").cumsum()
    fcs = (rows["type"] == "Linear").cumsum()
    n_conv = int(convs.max())
    rows.insert(0, "paper_layer", [
        layer if re.fullmatch(r"(conv|fc)\d+", layer) else f"conv{c}" if t == "Conv2d" else f"fc{n_conv + f}"
        for layer, t, c, f in zip(rows["layer"], rows["type"], convs, fcs)])
    return rows.reset_index(drop=True)


def paper_comparison(model: nn.Module | None = None) -> "pandas.DataFrame":
    """Each layer's neurons, parameters and MACs beside the numbers of §3.5 and Fig. 2 (``AlexNet()`` by default).

    ``neurons_fig2`` is Fig. 2's printed count; its first entry, 253,440, is not 55·55·96 = 290,400 (an erratum).
    """
    import pandas as pd

    table = weighted_layers(summary(model if model is not None else AlexNet()))
    rows = []
    for layer, fig2 in zip(PAPER_LAYERS, paper.FIG2_NEURONS):
        row = table[table["paper_layer"] == layer].iloc[0]
        rows.append(dict(layer=layer, output=row["output"], neurons=row["neurons"], neurons_fig2=fig2,
                         parameters=row["parameters"], parameters_paper=paper.PARAMETERS[layer],
                         mmac=round(row["macs"] / 1e6, 1), mmac_paper=paper.MMAC[layer], connects=row["connects"]))
    df = pd.DataFrame(rows)
    df["neurons_match"] = df["neurons"] == df["neurons_fig2"]
    df["parameters_match"] = df["parameters"] == df["parameters_paper"]
    df["mmac_match"] = (df["mmac"] - df["mmac_paper"]).abs() < 0.051
    return df


def input_size_rules() -> "pandas.DataFrame":
    """How a 224 or 227 image gives conv1's 55×55 maps (§3.5 says 224; (224−11)/4+1 is not an integer).

    Each rule's side is computed by the formula and checked by running an 11×11 stride-4 convolution.
    """
    import pandas as pd

    kernel, stride = paper.CONV_LAYERS[0][2], paper.CONV_LAYERS[0][3]
    ceil = CeilPad(kernel, stride).extra_pixels(224)
    rules = (  # rule, input side, pixels added before, pixels added after
        ("as printed: 224, no padding", 224, 0, 0),
        ("Caffe: 227 crop, no padding", 227, 0, 0),
        (f"cuda-convnet / this book: 224, ceil rule ({ceil} zeros right and bottom)", 224, 0, ceil),
        ("torchvision: 224, pad 2 on every side", 224, 2, 2),
    )
    rows = []
    weight = torch.ones(1, 3, kernel, kernel)
    for rule, side, before, after in rules:
        padded = side + before + after
        exact = (padded - kernel) / stride + 1
        x = F.pad(torch.zeros(1, 3, side, side), (before, after, before, after))
        measured = F.conv2d(x, weight, stride=stride).shape[-1]
        rows.append(dict(rule=rule, input=side, padded=padded,
                         arithmetic=f"({padded} − {kernel}) / {stride} + 1 = {exact:g}",
                         exact=exact, conv1_side=measured,
                         unused_pixels=padded - ((measured - 1) * stride + kernel)))
    return pd.DataFrame(rows)


def describe(model: nn.Module, input_size: int | None = None) -> dict:
    """One row of facts about a network: widths, groups, LRN, pools, dropout placement, parameters, GMAC."""
    leaves = [m for m in model.modules() if not list(m.children())]
    convs = [m for m in leaves if isinstance(m, nn.Conv2d)]
    pools = [m for m in leaves if isinstance(m, (nn.MaxPool2d, nn.AdaptiveAvgPool2d))]
    lrns = [m for m in leaves if isinstance(m, (LocalResponseNorm, nn.LocalResponseNorm))]
    weighted = [m for m in leaves if isinstance(m, (nn.Conv2d, nn.Linear))]
    table = summary(model, input_size)
    names = list(weighted_layers(table)["paper_layer"])  # in forward order, as ``weighted``
    # Each dropout is named by the layer it feeds: the paper's feed fc7 and fc8 (they sit on fc6's and fc7's
    # outputs); torchvision's feed fc6 and fc7.
    fed = [next((names[weighted.index(w)] for w in leaves[i + 1:] if w in weighted), "output")
           for i, m in enumerate(leaves) if isinstance(m, nn.Dropout) and m.p > 0]
    ps = sorted({m.p for m in leaves if isinstance(m, nn.Dropout) and m.p > 0})
    dropout = f"{'/'.join(f'{p:g}' for p in ps)} into {', '.join(fed)}" if fed else "none"

    def pool_text(m):
        if isinstance(m, nn.AdaptiveAvgPool2d):
            return "adaptive avg"
        k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
        s = m.stride if isinstance(m.stride, int) else m.stride[0]
        return f"max {k}/{s}"

    lrn = "none"
    if lrns:
        m = lrns[0]
        lrn = f"β={m.beta:g}, " + (f"within {m.towers} towers" if getattr(m, "towers", 1) > 1 else "all channels")
    return dict(input=input_size or getattr(model, "input_size", 224),
                conv_widths="-".join(str(m.out_channels) for m in convs),
                groups="-".join(str(m.groups) for m in convs),
                conv1=f"{convs[0].kernel_size[0]}×{convs[0].kernel_size[0]}/{convs[0].stride[0]}, "
                      f"pad {convs[0].padding[0]}",
                lrn=lrn,
                lrn_layers=len(lrns),
                pools=", ".join(pool_text(m) for m in pools),
                dropout=dropout,
                fc_widths="-".join(str(m.out_features) for m in weighted if isinstance(m, nn.Linear)),
                parameters=count_parameters(model),
                gmac=round(table["macs"].sum() / 1e9, 3))


def variant_table(models: dict[str, nn.Module]) -> "pandas.DataFrame":
    """``describe`` for several networks side by side, one row each (the notebook's variants table)."""
    import pandas as pd

    return pd.DataFrame({name: describe(m) for name, m in models.items()}).T


def tower_diagram(model: nn.Module | None = None, ax=None):
    """Fig. 2 as boxes: one column per tower, arrows where a layer reads its own tower (grey) or both (red).

    The red arrows are the only places the two GPUs communicate (§3.2): into conv3 and into every FC layer.
    Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    model = model if model is not None else AlexNet()
    if isinstance(model, TwoDeviceAlexNet):
        raise ValueError("draw the grouped AlexNet with the same options instead")
    table = summary(model)
    towers = getattr(model, "towers", 1)
    weighted = weighted_layers(table)
    after = {}  # what follows each weighted layer (activation, LRN, pool, dropout)
    current = None
    for _, row in table.iterrows():
        if row["type"] in ("Conv2d", "Linear"):
            current = weighted.loc[weighted["layer"] == row["layer"], "paper_layer"].iloc[0]
            after[current] = []
        elif current is not None:
            after[current].append({"ReLU": "ReLU", "Tanh": "tanh", "LocalResponseNorm": "LRN",
                                   "MaxPool2d": "pool", "Dropout": "dropout"}.get(row["type"], row["type"]))
    if ax is None:
        fig, ax = plt.subplots(figsize=(3.2 * towers + 1.6, 0.9 * (len(weighted) + 1) + 0.6))
    else:
        fig = ax.figure
    xs = [(t - (towers - 1) / 2) * 3.0 for t in range(towers)]
    width, height = 2.4, 0.62
    n = len(weighted)

    def box(x, y, text, colour):
        ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                    boxstyle="round,pad=0.02", fc=colour, ec="black", lw=0.8))
        ax.text(x, y, text, ha="center", va="center", fontsize=8)

    def arrow(x0, y0, x1, y1, cross):
        ax.annotate("", xy=(x1, y1 + height / 2), xytext=(x0, y0 - height / 2),
                    arrowprops=dict(arrowstyle="->", color="tab:red" if cross else "0.45", lw=1.4 if cross else 1.0))

    side = getattr(model, "input_size", 224)
    padded = table["output"].iloc[0][-1] if table["type"].iloc[0] == "CeilPad" else side
    y_image = n
    box(0.0, y_image, f"image 3×{side}×{side}" + (f"\n(ceil rule reads {padded}×{padded})" if padded != side else ""),
        "0.92")
    previous = [(0.0, y_image)]
    for i, row in weighted.iterrows():
        y = n - 1 - i
        last = i == n - 1
        shape = row["output"]
        columns = [0.0] if last else xs
        tail = " · ".join(after.get(row["paper_layer"], []))
        for x in columns:
            if len(shape) == 3:
                size = f"{shape[0] // (1 if last else towers)}×{shape[1]}×{shape[2]}"
            else:
                size = f"{shape[0] // (1 if last else towers)}"
            box(x, y, f"{row['paper_layer']}  {size}\n{tail}", "#dce9f5" if row["connects"] != "cross-tower"
                else "#fbe3d6")
        for x in columns:
            if row["connects"] == "tower":
                px, py = previous[xs.index(x)] if len(previous) == len(xs) else previous[0]
                arrow(px, py, x, y, cross=False)
            else:
                for px, py in previous:
                    arrow(px, py, x, y, cross=row["connects"] == "cross-tower" and px != x)
        previous = [(x, y) for x in columns]
    for t, x in enumerate(xs if towers > 1 else []):
        ax.text(x, n + 0.55, f"GPU {t + 1}", ha="center", va="bottom", fontsize=9, weight="bold")
    ax.set_xlim(min(xs) - width / 2 - 0.3, max(xs) + width / 2 + 0.3)
    ax.set_ylim(-0.6, n + 0.9)
    ax.axis("off")
    ax.set_title("towers: grey arrows stay on one GPU, red arrows cross (§3.2, Fig. 2)", fontsize=9)
    return fig


def time_forward(model: nn.Module, batch_size: int = 8, input_size: int | None = None, *, repeats: int = 3,
                 device: str | torch.device = "cpu") -> dict:
    """Inference speed of one network: the median of ``repeats`` timed forward passes after one warm-up.

    Returns images/s and achieved GMAC/s (the MACs of ``summary``); a measurement of this machine, not a paper number.
    """
    import statistics
    import time

    size = input_size or getattr(model, "input_size", 224)
    macs = count_macs(model, size)
    device = torch.device(device)
    model = model.to(device).eval()
    x = torch.randn(batch_size, 3, size, size, device=device)
    seconds = []
    with torch.no_grad():
        for i in range(repeats + 1):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i:  # the first pass warms up
                seconds.append(time.perf_counter() - start)
    step = statistics.median(seconds)
    return dict(batch_size=batch_size, seconds_per_batch=step, images_per_s=batch_size / step,
                gmac_per_s=macs * batch_size / step / 1e9, device=str(device))
