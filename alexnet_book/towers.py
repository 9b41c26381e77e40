"""The two-GPU specialisation of Fig. 3 (§6.1), measured.

The paper: "the kernels on GPU 1 are largely color-agnostic, while the kernels on on GPU 2 are largely
color-specific.  This kind of specialization occurs during every run and is independent of any particular
random weight initialization (modulo a renumbering of the GPUs)."

This module turns that sentence into numbers:

* ``conv1_kernels``      the first layer's kernels of any of our networks, in RGB, and how many towers hold them;
* ``colour_index``       one number per kernel: the share of its energy that is colour (see its docstring);
* ``chromatic_score``    one number per kernel: the share of its energy in one coherent hue -- high for a
  single-hue or opponent-colour blob, 0 for grey, low-to-middling for noise;
* ``grey_share``         per tower, the share of near-grey kernels (colour index below ``GREY_THRESHOLD``);
* ``tower_specialisation``  the two towers compared: a permutation test of the difference in mean chromatic
  score (the verdict), and of the near-grey shares; Mann–Whitney U, Cliff's delta and Cohen's d beside them;
* ``pooled_test``        one test over several runs, blind to the GPUs' numbering (permutations within runs);
* ``power``, ``power_table``  what the test can detect with 16 or 48 kernels per tower and n runs;
* ``SpecialisationTracker``  a ``train(callback=...)`` hook measuring the above after every epoch;
* ``specialisation_over_seeds``  the same network trained from n ≥ 3 seeds: does it happen "during every run"?
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn


def conv1_kernels(model) -> tuple[torch.Tensor, int]:
    """The first conv layer's kernels as a float tensor (N, 3, k, k) in RGB order, and the number of towers.

    Accepts any network of the book (``AlexNet`` with one or two towers, ``TwoDeviceAlexNet``,
    ``TorchvisionAlexNet``, ``FourLayerNet``, a BVLC import -- whose conv1 the importer already turned from
    BGR into RGB), a state dict, or a bare weight tensor (then counted as one tower).  In the two-tower net
    conv1 reads the whole image in both towers; tower t owns output channels [t·N/2, (t+1)·N/2) (§3.2).
    """
    if isinstance(model, torch.Tensor):
        weights, towers = model, 1
    elif isinstance(model, dict):
        key = next((k for k in ("features.conv1.weight", "features.0.weight", "conv1.weight") if k in model), None)
        if key is None:
            raise ValueError("state dict has no conv1 weight (looked for features.conv1.weight, features.0.weight)")
        weights, towers = model[key], 1
    elif hasattr(model, "grouped_state_dict"):  # TwoDeviceAlexNet: towers live on two devices
        weights, towers = model.grouped_state_dict()["features.conv1.weight"], 2
    elif isinstance(model, nn.Module):
        conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d) and m.in_channels == 3), None)
        if conv is None:
            raise ValueError(f"{type(model).__name__} has no convolution reading a 3-channel image")
        weights, towers = conv.weight, int(getattr(model, "towers", 1))
    else:
        raise ValueError(f"cannot read conv1 kernels from a {type(model).__name__}; pass a model or a tensor")
    weights = weights.detach().float().cpu()
    if weights.ndim != 4 or weights.shape[1] != 3:
        raise ValueError(f"conv1 weights must have shape (N, 3, k, k), not {tuple(weights.shape)}")
    return weights, towers


def _centred(weights) -> tuple[torch.Tensor, bool]:
    """(N, 3, k, k) float64 kernels with each kernel's mean over all 3·k·k weights removed (a uniform offset is
    brightness, not colour), and whether a single (3, k, k) kernel was given."""
    w = torch.as_tensor(weights, dtype=torch.float64)
    single = w.ndim == 3
    if single:
        w = w[None]
    if w.ndim != 4 or w.shape[1] != 3:
        raise ValueError(f"weights must have shape (N, 3, k, k), not {tuple(w.shape)}")
    return w - w.mean(dim=(1, 2, 3), keepdim=True), single


def _share(part: torch.Tensor, w: torch.Tensor, single: bool) -> torch.Tensor:
    """``part`` (per kernel) over each kernel's energy; 0 for a kernel that is zero after removing its mean."""
    energy = w.pow(2).sum(dim=(1, 2, 3))
    share = torch.where(energy > 0, part / energy.clamp_min(1e-300), torch.zeros_like(energy)).float()
    return share[0] if single else share


def colour_index(weights: torch.Tensor) -> torch.Tensor:
    """Per kernel, the share of its energy that is colour rather than grey: a number in [0, 1] (Fig. 3, §6.1).

    For a kernel w of shape (3, k, k): first remove its mean over all 3·k·k weights (a uniform offset is
    brightness, not colour); then split what is left, pixel by pixel, into its grey part g(x, y) -- the mean of
    the R, G, B weights at (x, y), i.e. the projection onto the grey direction (1, 1, 1)/√3 of colour space --
    and the rest.  The index is ||w − g||² / ||w||², summed over all pixels:

    * 0: colour-agnostic -- R, G and B weights equal at every pixel, the kernel sees only luminance;
    * 1: purely colour-opponent -- at every pixel the R, G, B weights sum to zero (e.g. red minus green);
    * 2/3: what a random kernel gives on average (two of the three colour directions are not grey), so
      training moves kernels from ≈ 0.67 down (grey edges) or up (colour blobs).

    A kernel that is zero after removing its mean gets 0.  ``weights``: (N, 3, k, k) or (3, k, k).
    """
    w, single = _centred(weights)
    return _share((w - w.mean(dim=1, keepdim=True)).pow(2).sum(dim=(1, 2, 3)), w, single)


# A kernel is "near-grey" (colour-agnostic) when less than a quarter of its energy is colour.  A random kernel
# has ≈ 2/3 (see ``colour_index``) with a spread of about 0.08 for 5×5 kernels and 0.035 for 11×11 ones, so a
# random kernel falls below 0.25 far less than once in a thousand (``tests/test_towers.py`` measures it).
GREY_THRESHOLD = 0.25


def chromatic_score(weights: torch.Tensor) -> torch.Tensor:
    """Per kernel, the share of its energy in one coherent hue: a number in [0, 1] (colour-specific: high).

    The kernel (mean removed, as in ``colour_index``) is a 3 × k² matrix W (colour × position).  Its colour
    part C -- what is left after removing the grey part at every pixel -- lives in the 2-d plane of colour
    space orthogonal to grey, so C has two singular values σ₁ ≥ σ₂.  The score is (σ₁² − σ₂²) / ||W||²: the
    energy of the colour part's dominant direction in excess of the direction across it, over the kernel's
    energy.  A kernel with one hue (at any sign and strength across its pixels) has σ₂ = 0; colour noise
    spreads its colour part over both directions (σ₁ ≈ σ₂); a grey kernel has no colour part.  So:

    * a grey kernel (edges, Gabors in luminance) and a pale, nearly grey hue: ≈ 0;
    * a single-hue blob: 0.8 for a primary (red, green, blue), 0.5-0.6 for yellow, cyan or orange (half of
      their contrast with a dark surround is luminance);
    * an opponent-colour blob or edge (red vs green, blue vs yellow): 1;
    * random noise: 0.17 ± 0.09 for 5×5 kernels, 0.08 ± 0.04 for 11×11 -- a middling-to-low score.

    ``colour_index`` (colour energy, coherent or not) scores a red blob and noise alike; this does not.
    ``weights``: (N, 3, k, k) or (3, k, k).  A kernel that is zero after removing its mean gets 0.
    """
    w, single = _centred(weights)
    colour = (w - w.mean(dim=1, keepdim=True)).flatten(2)  # (N, 3, k²): the grey part removed at every pixel
    sv = torch.linalg.svdvals(colour)  # (N, 3); the third is 0: the colour part has rank ≤ 2
    return _share((sv[:, 0].pow(2) - sv[:, 1].pow(2)).clamp_min(0), w, single)


def grey_share(index, threshold: float = GREY_THRESHOLD) -> float:
    """The share of kernels whose ``colour_index`` is below ``threshold``: near-grey, colour-agnostic kernels."""
    index = np.asarray(index, dtype=np.float64)
    return float((index < threshold).mean()) if len(index) else float("nan")


def _cliffs_delta(a: np.ndarray, b: np.ndarray) -> float:
    """P(b > a) − P(b < a) over all pairs (a vectorised comparison; equals the rank-biserial correlation)."""
    diff = np.sign(b[:, None] - a[None, :])
    return float(diff.mean())


def _cohens_d(a: np.ndarray, b: np.ndarray) -> float:
    """(mean b − mean a) / pooled standard deviation."""
    na, nb = len(a), len(b)
    pooled = ((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / max(na + nb - 2, 1)
    return float((b.mean() - a.mean()) / math.sqrt(pooled)) if pooled > 0 else 0.0


def _permutation_p(a: np.ndarray, b: np.ndarray, n_permutations: int, seed: int) -> float:
    """Two-sided permutation p-value of |mean b − mean a|, all permutations drawn at once (batched).

    The mean, not the median: a specialised layer is bimodal (grey kernels near 0, colour kernels near 1),
    and the difference of two medians of a random split of a bimodal pool is often as large as the observed
    one, so a median test loses nearly all its power exactly where the paper's claim lives.
    """
    return pooled_test([(a, b)], n_permutations=n_permutations, seed=seed)


def _observed_and_null(pairs, n_permutations: int, rng) -> tuple[float, np.ndarray]:
    """Σ over runs of |mean b − mean a|, and its null distribution with the labels permuted within each run."""
    observed, null = 0.0, np.zeros(n_permutations)
    for a, b in pairs:
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        observed += abs(b.mean() - a.mean())
        perms = rng.permuted(np.tile(np.concatenate([a, b]), (n_permutations, 1)), axis=1)
        null += np.abs(perms[:, len(a):].mean(axis=1) - perms[:, :len(a)].mean(axis=1))
    return observed, null


def _p_value(observed: float, null: np.ndarray) -> float:
    return float((1 + np.sum(null >= observed - 1e-12)) / (len(null) + 1))


@dataclass
class Specialisation:
    """The two towers' conv1 kernels compared (Fig. 3, §6.1).  Signed statistics are tower 2 − tower 1.

    The verdict (``significant``) is the permutation test of the difference in mean ``chromatic_score``; the
    near-grey shares (``grey``) and their own permutation test say whether one tower is "largely
    colour-agnostic"; Mann–Whitney, Cliff's delta and Cohen's d (all on the chromatic score) are reported beside.
    """

    index: list[np.ndarray]      # colour index of each kernel, one array per tower
    median: tuple[float, float]  # median colour index per tower
    mean: tuple[float, float]    # mean colour index per tower
    mann_whitney_u: float        # U of tower 2 against tower 1 (chromatic score)
    p_mann_whitney: float        # two-sided
    p_permutation: float         # two-sided permutation test of the difference in mean chromatic score
    cliffs_delta: float          # P(tower-2 kernel more chromatic) − P(less); = rank-biserial r; in [−1, 1]
    cohens_d: float
    alpha: float = 0.05
    chromatic: list = field(default_factory=list)      # chromatic score of each kernel, one array per tower
    chromatic_mean: tuple = (math.nan, math.nan)       # mean chromatic score per tower
    grey: tuple = (math.nan, math.nan)                 # share of near-grey kernels per tower (``grey_share``)
    p_grey: float = math.nan                           # two-sided permutation test of the difference in grey shares

    @property
    def effect(self) -> float:
        """|Cliff's delta|: the size of the specialisation whatever the GPUs' numbering."""
        return abs(self.cliffs_delta)

    @property
    def sign(self) -> int:
        """+1 when tower 2 is the more chromatic, −1 when tower 1 is, 0 when neither."""
        return int(np.sign(self.chromatic_mean[1] - self.chromatic_mean[0])) if self.chromatic else \
            int(np.sign(self.cliffs_delta))

    @property
    def colour_tower(self) -> int | None:
        """1 or 2: the tower whose kernels are more colour-specific; None when the difference is not significant."""
        if not self.significant or self.sign == 0:
            return None
        return 2 if self.sign > 0 else 1

    @property
    def significant(self) -> bool:
        """The permutation test of the mean chromatic score (the test docs/figures.md argues for) at ``alpha``."""
        return self.p_permutation < self.alpha

    def as_row(self) -> dict:
        """The numbers as one flat dict (a row of a table)."""
        return dict(median_tower1=self.median[0], median_tower2=self.median[1], mean_tower1=self.mean[0],
                    mean_tower2=self.mean[1], chromatic_tower1=self.chromatic_mean[0],
                    chromatic_tower2=self.chromatic_mean[1], grey_tower1=self.grey[0], grey_tower2=self.grey[1],
                    u=self.mann_whitney_u, p_mann_whitney=self.p_mann_whitney, p_permutation=self.p_permutation,
                    p_grey=self.p_grey, cliffs_delta=self.cliffs_delta, effect=self.effect, sign=self.sign,
                    cohens_d=self.cohens_d, colour_tower=self.colour_tower, significant=self.significant)

    def __str__(self) -> str:
        who = (f"tower {self.colour_tower} is the colour tower" if self.colour_tower
               else "no significant difference between the towers")
        return (f"mean chromatic score: tower 1 {self.chromatic_mean[0]:.3f}, tower 2 {self.chromatic_mean[1]:.3f}; "
                f"near-grey kernels {self.grey[0]:.0%} / {self.grey[1]:.0%}; "
                f"permutation p = {self.p_permutation:.2g} (grey shares p = {self.p_grey:.2g}); "
                f"Cliff's delta = {self.cliffs_delta:+.2f}, Cohen's d = {self.cohens_d:+.2f}: {who}")


def tower_specialisation(model, *, towers: int | None = None, n_permutations: int = 10_000, seed: int = 0,
                         alpha: float = 0.05) -> Specialisation:
    """Compare tower 1's and tower 2's conv1 kernels (Fig. 3, §6.1).

    ``model``: a network, state dict or (N, 3, k, k) tensor (see ``conv1_kernels``).  ``towers=2`` splits a
    one-tower network's kernels into two arbitrary halves -- a control that should show no difference.
    Per kernel: ``colour_index`` and ``chromatic_score``; per tower: the mean chromatic score and the share of
    near-grey kernels.  The verdict: a two-sided permutation test of the difference in mean chromatic score
    (``n_permutations`` random relabellings); the grey shares get their own permutation test.  Effect sizes
    (Cliff's delta = rank-biserial correlation, Cohen's d) and Mann–Whitney U, on the chromatic score, are
    signed tower 2 − tower 1.  "Modulo a renumbering of the GPUs": compare ``effect`` (|delta|) across runs,
    and read ``sign`` separately (``pooled_test`` does both for several runs).
    """
    from scipy.stats import mannwhitneyu

    weights, own = conv1_kernels(model)
    towers = towers or own
    if towers != 2:
        raise ValueError("this network has one tower: there is no second GPU to compare; "
                         "pass towers=2 to compare two arbitrary halves as a control")
    if len(weights) % 2 or len(weights) < 4:
        raise ValueError(f"{len(weights)} kernels do not split into two towers of at least 2")
    index = colour_index(weights).numpy().astype(np.float64)
    chroma = chromatic_score(weights).numpy().astype(np.float64)
    half = len(index) // 2
    a, b = index[:half], index[half:]
    ca, cb = chroma[:half], chroma[half:]
    ga, gb = (a < GREY_THRESHOLD).astype(np.float64), (b < GREY_THRESHOLD).astype(np.float64)
    u, p = mannwhitneyu(cb, ca, alternative="two-sided")
    return Specialisation(
        index=[a, b], median=(float(np.median(a)), float(np.median(b))), mean=(float(a.mean()), float(b.mean())),
        mann_whitney_u=float(u), p_mann_whitney=float(p),
        p_permutation=_permutation_p(ca, cb, n_permutations, seed),
        cliffs_delta=_cliffs_delta(ca, cb), cohens_d=_cohens_d(ca, cb), alpha=alpha,
        chromatic=[ca, cb], chromatic_mean=(float(ca.mean()), float(cb.mean())),
        grey=(float(ga.mean()), float(gb.mean())), p_grey=_permutation_p(ga, gb, n_permutations, seed + 1))


def pooled_test(pairs, *, n_permutations: int = 10_000, seed: int = 0) -> float:
    """One two-sided test over several runs of "one tower is more chromatic than the other", whichever it is.

    ``pairs``: per run, the two towers' per-kernel scores (``Specialisation.chromatic``, or the grey indicators).
    Statistic: the sum over runs of |mean tower 2 − mean tower 1| -- blind to the GPUs' numbering, as the paper's
    "modulo a renumbering" asks.  Null distribution: the kernels' tower labels permuted within each run.
    Returns the p-value ((1 + #{null ≥ observed}) / (1 + n_permutations)).
    """
    return _p_value(*_observed_and_null(pairs, n_permutations, np.random.default_rng(seed)))


def power(kernels_per_tower: int, effect: float, *, runs: int = 1, alpha: float = 0.05, simulations: int = 400,
          n_permutations: int = 400, seed: int = 0) -> float:
    """The probability that the permutation test finds a difference of ``effect`` (Cohen's d: the towers' means
    apart by ``effect`` standard deviations) with ``kernels_per_tower`` kernels per tower, one run
    (``tower_specialisation``'s test) or ``runs`` runs pooled (``pooled_test``), at level ``alpha``.

    Monte Carlo: ``simulations`` data sets drawn from two normal distributions, each tested with
    ``n_permutations`` permutations (a standard error of about ±0.025 at the default 400 simulations).
    """
    rng = np.random.default_rng(seed)
    n, hits = kernels_per_tower, 0
    for _ in range(simulations):
        # drawn lazily, run by run between the permutations: the same random stream as one loop over runs
        pairs = ((rng.normal(0.0, 1.0, n), rng.normal(effect, 1.0, n)) for _run in range(runs))
        hits += _p_value(*_observed_and_null(pairs, n_permutations, rng)) < alpha
    return hits / simulations


def power_table(kernels=(16, 48), runs=(1, 5), effects=(0.3, 0.5, 0.8, 1.0, 1.5), **options):
    """``power`` over a grid: one row per (kernels per tower, runs), one column per effect size (Cohen's d).

    What a null result can rule out: with 16 kernels per tower and one run, only a large effect (d ≈ 1) is
    found reliably; 48 kernels or 5 runs pooled bring that down (docs/figures.md has the table).
    """
    import pandas as pd

    rows = [{"kernels_per_tower": k, "runs": r, **{f"d={d}": power(k, d, runs=r, **options) for d in effects}}
            for k in kernels for r in runs]
    return pd.DataFrame(rows)


@dataclass
class SpecialisationTracker:
    """A ``train(callback=...)`` hook: measures the towers' specialisation after every epoch (Fig. 3, §6.1).

    ``train`` calls it with each epoch's metrics row; the network is read from the event's ``"model"``
    entry, or, failing that, from the ``model`` given here (the same object ``train`` updates in place).
    ``rows`` collects one dict per epoch (epoch, step, the specialisation numbers); ``table()`` returns them.
    """

    model: nn.Module | None = None
    n_permutations: int = 2000
    rows: list[dict] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # constant columns added to every row (e.g. seed)

    def measure(self, model, **columns) -> Specialisation:
        result = tower_specialisation(model, n_permutations=self.n_permutations)
        self.rows.append({**self.extra, **columns, **result.as_row()})
        return result

    def __call__(self, event: dict) -> None:
        model = event.get("model", self.model)
        if model is None:
            raise ValueError("SpecialisationTracker needs the network: train() should pass event['model'], "
                             "or give SpecialisationTracker(model=...)")
        self.measure(model, epoch=event.get("epoch"), step=event.get("step"))

    def table(self):
        import pandas as pd
        return pd.DataFrame(self.rows)


def initial_network(config):
    """The network ``train(config)`` starts from: same seed, same construction, the global RNG left untouched.

    Epoch 0 of the specialisation record: at initialisation the towers' kernels are drawn alike, so any
    difference there is chance, and a difference later has to grow beyond it.
    """
    from .networks import build_network

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)  # as train() does just before building the network
        return build_network(config, 10, 224 if config.scale == "full" else 32)


def specialisation_over_seeds(config, seeds=(0, 1, 2), *, progress: bool = True, store=None,
                              n_permutations: int = 2000):
    """Train the same two-tower network from several seeds, tracking the specialisation per epoch (§6.1).

    ``config``: a ``config.TrainConfig`` (its ``seed`` is replaced by each of ``seeds``; n ≥ 3 to say anything
    about "every run").  Returns ``(per_epoch, final)``: one table with a row per seed and epoch (epoch 0: the
    initialisation, see ``initial_network``; both towers sit near 2/3 there, see ``colour_index``), and one row
    per seed with the trained network's numbers.  A finished identical run is
    reused from the results store (``train(reuse=True)``), in which case only its final state is measured.
    """
    import pandas as pd

    from .train import train

    if len(seeds) < 3:
        raise ValueError(f"give at least 3 seeds to test 'occurs during every run', not {len(seeds)}")
    per_epoch, final = [], []
    for seed in seeds:
        cfg = replace(config, seed=seed)
        tracker = SpecialisationTracker(n_permutations=n_permutations, extra={"seed": seed})
        tracker.measure(initial_network(cfg), epoch=0, step=0)
        result = train(cfg, progress=progress, callback=tracker, store=store)
        per_epoch.extend(tracker.rows)
        if result.model is None:
            raise ValueError(f"run {result.run_dir} returned no network to measure")
        row = {"seed": seed, "config_hash": cfg.hash(), "reused": result.reused,
               "val_top1_error": result.metrics.get("val_top1_error"),
               **tower_specialisation(result.model, n_permutations=n_permutations).as_row()}
        final.append(row)
    return pd.DataFrame(per_epoch), pd.DataFrame(final)


def summarise_seeds(final) -> dict:
    """The "every run" question answered from ``specialisation_over_seeds``'s final table.

    Returns the number of runs, how many show a significant difference, which tower was the colour one in
    each, and the median |Cliff's delta| -- the effect size that ignores the GPUs' numbering.
    """
    significant = final["significant"].astype(bool)
    return {
        "runs": int(len(final)),
        "significant_runs": int(significant.sum()),
        "colour_towers": [None if (t is None or (isinstance(t, float) and math.isnan(t))) else int(t)
                          for t in final["colour_tower"]],
        "median_effect": float(final["effect"].median()),
        "min_effect": float(final["effect"].min()),
        "every_run": bool(significant.all()),
    }


def kernel_table(model, **columns):
    """One row per conv1 kernel: tower, kernel, colour_index, chromatic score, near-grey (and ``columns``)."""
    import pandas as pd

    weights, towers = conv1_kernels(model)
    towers = towers if towers == 2 else 1
    per = len(weights) // towers
    index = colour_index(weights).numpy()
    return pd.DataFrame({**columns, "tower": np.arange(len(weights)) // per + 1, "kernel": np.arange(len(weights)),
                         "colour_index": index, "chromatic": chromatic_score(weights).numpy(),
                         "near_grey": index < GREY_THRESHOLD})


def random_kernel_bounds(kernel_size: int = 5, n: int = 20_000, seed: int = 0) -> tuple[float, float]:
    """The colour index below which, and the chromatic score above which, only 0.5% of random Gaussian kernels
    of this size fall: a trained kernel beyond either bound has left the random-initialisation regime."""
    w = torch.randn(n, 3, kernel_size, kernel_size, generator=torch.Generator().manual_seed(seed))
    return (float(torch.quantile(colour_index(w), 0.005)), float(torch.quantile(chromatic_score(w), 0.995)))


# Fig. 3's claim judged over seeds (``specialisation_verdict``).  |Cliff's delta| >= 0.474 is a "large" effect
# (Romano et al. 2006; it corresponds to Cohen's d = 0.8), and the paper's "largely color-agnostic" vs "largely
# color-specific" is at least that.  A group in which fewer than a quarter of the conv1 kernels have left the
# random-initialisation regime has nothing to specialise: no verdict either way.
LARGE_EFFECT = 0.474
LARGE_EFFECT_D = 0.8
MIN_STRUCTURED_SHARE = 0.25


def specialisation_verdict(row, power_large: float, *, alpha: float = 0.05) -> str:
    """agrees / disagrees / inconclusive for one group of ``pooled_summary`` (one kernels-per-tower, over seeds).

    inconclusive when the mechanism is not active (``structured_share`` < ``MIN_STRUCTURED_SHARE``: conv1 still
    looks like its initialisation).  agrees when a pooled test (chromatic score or near-grey share, each at
    alpha / 2) finds the towers different and the median |Cliff's delta| is large (>= ``LARGE_EFFECT``).
    disagrees when neither test finds a difference although it had the power (``power_large`` >= 0.8: the
    probability of finding a large effect, d = 0.8, with these kernels and runs -- ``power``) to find one the
    size the paper describes.  Otherwise inconclusive (a small difference, or too little power).
    """
    if row["structured_share"] < MIN_STRUCTURED_SHARE:
        return "inconclusive"
    significant = min(row["p_pooled_chromatic"], row["p_pooled_grey"]) < alpha / 2
    if significant and row["median_effect"] >= LARGE_EFFECT:
        return "agrees"
    if not significant and power_large >= 0.8:
        return "disagrees"
    return "inconclusive"


def pooled_summary(kernels, *, n_permutations: int = 20_000, kernel_size: int = 5) -> "pandas.DataFrame":
    """Per kernels-per-tower group of ``kernel_table`` rows (over seeds): runs, the pooled permutation p of the
    chromatic score and of the near-grey share (``pooled_test``), the median |Cliff's delta| of the chromatic
    score, in how many runs each tower was the more chromatic one, and ``structured_share``: the share of kernels
    that have left the random-initialisation regime (``random_kernel_bounds``) -- is there structure to
    specialise at all?"""
    import pandas as pd

    grey_bound, chroma_bound = random_kernel_bounds(kernel_size)
    rows = []
    for k, group in kernels.groupby("kernels_per_tower"):
        chroma, grey, effects, higher = [], [], [], []
        for _seed, run in group.groupby("seed"):
            a, b = (run[run.tower == t] for t in (1, 2))
            chroma.append((a.chromatic.to_numpy(), b.chromatic.to_numpy()))
            grey.append((a.near_grey.to_numpy(float), b.near_grey.to_numpy(float)))
            effects.append(abs(_cliffs_delta(*chroma[-1])))
            higher.append(2 if b.chromatic.mean() > a.chromatic.mean() else 1)
        rows.append(dict(kernels_per_tower=int(k), runs=len(chroma),
                         p_pooled_chromatic=pooled_test(chroma, n_permutations=n_permutations),
                         p_pooled_grey=pooled_test(grey, n_permutations=n_permutations, seed=1),
                         median_effect=float(np.median(effects)), min_effect=float(np.min(effects)),
                         max_effect=float(np.max(effects)), tower2_more_chromatic=int(sum(h == 2 for h in higher)),
                         structured_share=float(((group.colour_index < grey_bound)
                                                 | (group.chromatic > chroma_bound)).mean())))
    return pd.DataFrame(rows)
