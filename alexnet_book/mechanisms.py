"""Is the mechanism under test active at the scale it is measured?  (§3.3 LRN's divisor; §4.1 PCA colour noise.)

An ablation of LRN tells a reader something only where LRN does something.  The layer divides each unit by
d^β with d = k + α/n·Σ_j a_j² over the window of neighbouring maps (§3.3).  When the sum term is negligible
against k, d^β is the constant k^β: the layer is a fixed rescale that the next layer's weights absorb, and "no
LRN" compares a network with itself.  That happened in the book's CPU track before its input scale was matched
(inputs ×1/64 made the sum term 64² = 4,096 times smaller; ``TrainConfig.lrn_follows_input_scale``).

``lrn_activity(model, images)`` runs the network on a batch and measures, at every LRN layer, over all units
and positions: the sum term relative to k, and the spread of the divisor d^β.  ``ACTIVE`` holds the
thresholds ``lrn_is_active`` applies (see its docstring for why these).

PCA colour noise (§4.1) can lower the error only where the network must learn to ignore it: a network trained
without it whose predictions do not move when the noise is added has nothing to learn from it.
``colour_sensitivity(model, splits)`` scores a trained network on the validation centre crops, clean and with the
training draw of the noise added (αᵢ ~ N(0, 0.1), one RGB shift per image, a fixed generator).
"""
from __future__ import annotations

import math

import torch

from .layers import LocalResponseNorm, _channel_window_sum

# A layer normalises when (a) at least a tenth of its units see a sum term of at least 0.1·k -- each of them is
# then divided by ≥ (1.1)^0.75 ≈ 1.074 times the constant k^β, i.e. ≥ 7% more than the rest could be rescaled
# by -- and (b) its divisor varies across units and positions by a coefficient of variation of at least 2%.
# The book's CPU track before the fix had sum/k ≤ 0.002 everywhere and a CV of ~0.05%: two orders of magnitude
# below both; a layer passing them is far from a constant rescale.
ACTIVE = {"sum_over_k_p90": 0.1, "divisor_cv": 0.02}
# Below that, a layer still acts on its most active units when the top 1% see a sum term of ≥ 0.1·k and the
# divisor varies by ≥ 1% (CV): "weak".  Anything less is "constant": a rescale by k^-β, which is what the CPU
# track's layers were (CV ~0.05%, sum/k ~1e-4 at the 99th percentile).
WEAK = {"sum_over_k_p99": 0.1, "divisor_cv": 0.01}


def _divisor(module: LocalResponseNorm, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum term α/n·Σa², divisor (k + sum)^β) of one LRN layer for its input ``a``, per unit and position."""
    n, c, h, w = a.shape
    towers = module.towers
    x = a.float().reshape(n * towers, c // towers, h, w)
    sums = _channel_window_sum(x * x, module.size // 2, (module.size - 1) // 2).reshape(n, c, h, w)
    term = module.alpha / module.size * sums  # the module's alpha is torch's α (the /n is applied here)
    return term, (module.k + term) ** module.beta


def _lrn_inputs(model: torch.nn.Module, images: torch.Tensor):
    """([(name, LRN module)], {name: its input}) from one eval-mode pass of ``images`` through ``model``."""
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, LocalResponseNorm)]
    captured = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, name=name: captured.__setitem__(name, inp[0].detach()))
             for name, m in found]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(images)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return found, captured


def lrn_activity(model: torch.nn.Module, images: torch.Tensor, *, sample: int = 200_000, seed: int = 0):
    """Per LRN layer of ``model`` on ``images`` (already preprocessed): how much the layer really normalises.

    Returns a DataFrame, one row per LRN layer: k, the sum term over k (median, 90th and 99th percentile), the
    divisor d^β (mean, coefficient of variation, 1st and 99th percentile, relative to the constant k^β), the
    share of units with sum ≥ 0.1·k, ``active`` per ``ACTIVE`` and ``state`` (``lrn_state``).  ``images`` go through the network once in
    eval mode; the statistics use up to ``sample`` units and positions per layer, drawn with ``seed``.
    """
    import pandas as pd

    found, captured = _lrn_inputs(model, images)
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for name, module in found:
        term, divisor = _divisor(module, captured[name])
        ratio = (term / module.k).flatten()
        d = divisor.flatten()
        if len(d) > sample:
            pick = torch.randperm(len(d), generator=generator)[:sample]
            ratio, d = ratio[pick], d[pick]
        q = torch.quantile(ratio.double(), torch.tensor([0.5, 0.9, 0.99], dtype=torch.float64))
        dq = torch.quantile(d.double(), torch.tensor([0.01, 0.99], dtype=torch.float64))
        constant = module.k ** module.beta
        cv = float(d.double().std() / d.double().mean())
        rows.append(dict(layer=name, k=module.k, alpha_torch=module.alpha, beta=module.beta,
                         sum_over_k_median=float(q[0]), sum_over_k_p90=float(q[1]), sum_over_k_p99=float(q[2]),
                         share_sum_ge_0_1k=float((ratio >= 0.1).double().mean()),
                         divisor_mean_rel=float(d.double().mean()) / constant, divisor_cv=cv,
                         divisor_p01_rel=float(dq[0]) / constant, divisor_p99_rel=float(dq[1]) / constant,
                         units=int(divisor.numel())))
    table = pd.DataFrame(rows)
    if len(table):
        table["active"] = [lrn_is_active(r) for r in table.to_dict("records")]
        table["state"] = [lrn_state(r) for r in table.to_dict("records")]
    return table


def lrn_state(row: dict) -> str:
    """"normalises" (``ACTIVE``), "weak" (only its most active units are divided by more; ``WEAK``) or
    "constant" (a rescale by k^-β: the sum term negligible, the divisor the same everywhere)."""
    if lrn_is_active(row):
        return "normalises"
    if row["sum_over_k_p99"] >= WEAK["sum_over_k_p99"] and row["divisor_cv"] >= WEAK["divisor_cv"]:
        return "weak"
    return "constant"


def lrn_summary(frame) -> list[str]:
    """One line per network and LRN layer of a trained-networks check (``ablations.trained_lrn_activity``): in how
    many seeds the layer normalises, and the range of its divisor's CV and 99th percentile over the seeds, e.g.
    "lrn_fourlayer:with features.lrn1: normalises in 4 of 4 seeds (divisor CV 9–12%; top 1% divided by 1.3–1.5×
    the constant)".  A check written before it had a ``network`` column holds baselines only."""
    lines = []
    if not len(frame):
        return lines
    frame = frame if "network" in frame else frame.assign(network="baseline")
    for (network, layer), group in frame.groupby(["network", "layer"], sort=False):
        states = group["state"].value_counts()
        counts = ", ".join(f"{state} in {n} of {len(group)} seeds" for state, n in states.items())
        cv, p99 = group["divisor_cv"], group["divisor_p99_rel"]
        lines.append(f"{network} {layer}: {counts} (divisor CV {_span(100 * cv, '.0f')}%; top 1% "
                     f"divided by {_span(p99, '.2f')}× the constant)")
    return lines


def _span(values, spec: str) -> str:
    """"lo–hi" of ``values`` in format ``spec``, or one number where both ends print alike ("17", not "17–17")."""
    lo, hi = format(values.min(), spec), format(values.max(), spec)
    return lo if lo == hi else f"{lo}–{hi}"


def plot_lrn_divisors(networks: dict, images: dict, *, bins: int = 60, sample: int = 100_000, seed: int = 0):
    """Histograms of each LRN layer's divisor relative to the constant k^β, one line per network.

    ``networks`` maps a label to a model, ``images`` the same label to its preprocessed input batch.  A layer
    that only rescales shows a spike at 1; one that normalises spreads to the right (the divisor grows with
    the activity of the neighbouring maps).  Returns the figure.
    """
    import matplotlib.pyplot as plt

    layers = None
    generator = torch.Generator().manual_seed(seed)
    samples = {}
    for label, model in networks.items():
        found, captured = _lrn_inputs(model, images[label])
        layers = layers or [name for name, _ in found]
        for name, m in found:
            d = (_divisor(m, captured[name])[1] / m.k ** m.beta).flatten()
            if len(d) > sample:
                d = d[torch.randperm(len(d), generator=generator)[:sample]]
            samples[(label, name)] = d.numpy()
    fig, axes = plt.subplots(1, len(layers or [None]), figsize=(5 * max(len(layers or []), 1), 3.2), squeeze=False)
    for ax, name in zip(axes[0], layers or []):
        for label in networks:
            ax.hist(samples[(label, name)], bins=bins, histtype="step", density=True, label=label, linewidth=1.4)
        ax.set_title(f"{name}: divisor (k + α/n·Σa²)^β ÷ k^β")
        ax.set_xlabel("relative divisor (1 = a constant rescale)")
        ax.set_yscale("log")
    axes[0][0].set_ylabel("density")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def lrn_is_active(row: dict) -> bool:
    """Whether one ``lrn_activity`` row normalises by a varying amount (thresholds: ``ACTIVE``)."""
    return (row["sum_over_k_p90"] >= ACTIVE["sum_over_k_p90"] and row["divisor_cv"] >= ACTIVE["divisor_cv"]
            and math.isfinite(row["divisor_cv"]))


def network_input(splits, config, count: int = 256, *, seed: int = 0) -> torch.Tensor:
    """``count`` validation images drawn across classes, preprocessed as ``config`` trains: centre crop minus
    the mean image, times its input scale (the batch ``lrn_activity`` measures on)."""
    from .augment import centre_batch

    pick = torch.randperm(len(splits.val), generator=torch.Generator().manual_seed(seed))[:count].sort().values
    x = centre_batch(splits.val.images[pick], splits.mean_image, splits.crop)
    return x * config.input_scale


def recipe_lrn_activity(config, splits=None, model=None, *, count: int = 256):
    """``lrn_activity`` of the network a TrainConfig builds (or ``model``, e.g. trained by it) on its own data."""
    from .networks import build_network

    if splits is None:
        from .data import load_dataset

        splits = load_dataset(config.data, config.root, scale=config.scale, limit=config.limit, progress=False)
    if model is None:
        torch.manual_seed(config.seed)
        model = build_network(config, len(splits.classes), splits.crop)
    model = model.float().cpu()
    return lrn_activity(model, network_input(splits, config, count))


# jittered copies of the validation set per network: the rise's own sampling noise shrinks as 1/√draws
COLOUR_DRAWS = 4


def colour_sensitivity(model: torch.nn.Module, splits, *, input_scale: float = 1.0, draws: int = COLOUR_DRAWS,
                       seed: int = 0, std: float | None = None, batch_size: int = 500) -> dict:
    """How much PCA colour noise (§4.1) moves a trained network: its top-1 validation error (centre crop, eval
    mode, fp32) on clean images and on ``draws`` copies with the training draw of the noise added.

    Returns ``images``, ``clean_error`` and ``jittered_error`` (%, the mean over draws), ``rise`` (jittered −
    clean, points) and ``changed`` (% of predictions that differ from the clean ones, mean over draws).  The same
    generator seed gives every network the same shifts, so two networks are compared on identical inputs.
    """
    from .augment import PCA_STD, centre_batch, pca_colour_offsets

    std = PCA_STD if std is None else std
    images, labels = splits.val.images, torch.as_tensor(splits.val.labels)
    n = len(labels)
    generator = torch.Generator().manual_seed(seed)
    offsets = [pca_colour_offsets(n, splits.pca_eigvals, splits.pca_eigvecs, std=std, generator=generator)
               for _ in range(draws)]
    model = model.float().cpu()
    was_training = model.training
    model.eval()
    clean, jittered = [], [[] for _ in range(draws)]
    try:
        with torch.no_grad():
            for start in range(0, n, batch_size):
                x = centre_batch(images[start:start + batch_size], splits.mean_image, splits.crop)
                clean.append(model((x * input_scale).contiguous()).argmax(1))
                for d in range(draws):
                    shifted = x + offsets[d][start:start + len(x), :, None, None]
                    jittered[d].append(model((shifted * input_scale).contiguous()).argmax(1))
    finally:
        model.train(was_training)
    clean = torch.cat(clean) if clean else torch.zeros(0, dtype=torch.long)
    jittered = [torch.cat(j) if j else torch.zeros(0, dtype=torch.long) for j in jittered]

    def error(predicted):
        return 100.0 * float((predicted != labels).float().mean()) if n else math.nan

    clean_error = error(clean)
    jittered_error = sum(error(j) for j in jittered) / draws if draws else math.nan
    changed = sum(100.0 * float((j != clean).float().mean()) for j in jittered) / draws if draws and n else math.nan
    return dict(images=n, clean_error=clean_error, jittered_error=jittered_error,
                rise=jittered_error - clean_error, changed=changed)
