"""Training with the paper's recipe (§5), on a CPU, one GPU, or many GPUs and nodes through torchrun.

"We trained our models using stochastic gradient descent with a batch size of 128 examples, momentum of 0.9,
and weight decay of 0.0005 ... The learning rate was initialized at 0.01 ... We followed a heuristic which
was to divide the learning rate by 10 when the validation error rate stopped improving with the current
learning rate.  The learning rate was reduced three times prior to termination." (§5)

``train(TrainConfig(...))`` is the one training path: the notebooks, ``alexnet-book train``, the ablations and
torchrun all call it.  Read it top to bottom: configuration, the pieces of the recipe (parameter groups, the
plateau rule, the learning rate), then ``train`` itself, then the command line.

Several processes (``torchrun --nproc_per_node=N``): each rank takes a disjoint share of every batch (the
global batch stays ``batch_size``), gradients are averaged by DistributedDataParallel, every validation image
is scored by exactly one rank and the counts are summed; rank 0 alone logs, checkpoints and records.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from . import paper
from .augment import train_batch
from .evaluate import evaluate, shard
from .files import atomic_write_text
from .runs import MetricsLog, ResultsStore, config_hash, load_checkpoint, save_checkpoint
from .runs import run_lock

# TrainConfig fields added after results were first recorded, with their defaults (see ``TrainConfig.hash``).
LATER_FIELDS = {"stop_train_error": None, "lrn_follows_input_scale": False, "train_eval_size": 0,
                "data_on_device": False}


@dataclass
class TrainConfig:
    """Every knob of a training run (§5 defaults); saved with the run as config.json and hashed to name it."""

    data: str = "auto"  # load_dataset name: "auto" | "cifar10" | "imagenet" | "imagenet-subset" | ... | "synthetic"
    root: str | None = None  # the data set's folder or archive (None: found automatically)
    scale: str | None = None  # "scaled" (32 px crops) | "full" (224 px) | "native" (32 of 32); None: the set's default
    limit: int | None = None  # at most this many images per split (smoke runs)
    model: str = "alexnet"  # build_model name: "alexnet" | "torchvision" | "fourlayer"
    model_options: dict = field(default_factory=dict)  # build_model options, e.g. {"towers": 1, "lrn": None}
    epochs: int = paper.RECIPE["epochs"]
    max_steps: int | None = None  # stop after this many optimiser steps (a budget; the run can be continued)
    stop_train_error: float | None = None  # end the run after the first epoch whose training error is ≤ this (Fig. 1)
    batch_size: int = paper.RECIPE["batch_size"]  # global: split across processes under torchrun
    lr: float = paper.RECIPE["lr"]
    momentum: float = paper.RECIPE["momentum"]
    weight_decay: float = paper.RECIPE["weight_decay"]
    bias_like_authors: bool = False  # biases exempt from weight decay and at 2× lr (cuda-convnet2, Caffe)
    schedule: str = "plateau"  # "plateau" (§5) | "constant" | "linear" (decay to 0 over the run; quick recipes)
    patience: int = 3  # validations without improvement before the plateau rule divides lr by 10
    max_drops: int = paper.RECIPE["lr_drops"]
    warmup_epochs: float = 0.0  # linear warm-up of lr from 0 (not in the paper; helps short runs)
    input_scale: float = 1.0  # multiplies the mean-subtracted 0-255 input; 1 = the paper's raw units
    # LRN's α divided by input_scale², so that its sum term sees what it would on the paper's 0-255 input (§3.3):
    # without it an input scaled by 1/64 leaves α/n·Σa² ~4,096× smaller and LRN a constant rescale by k^-β
    lrn_follows_input_scale: bool = False
    init_std: float | str | None = None  # None: §5's N(0, 0.01); a number: that std; "he": √(2/fan-in) per layer
    init_bias: float | None = None  # None: §5's biases of 1 (conv2, conv4, conv5, fc6, fc7); e.g. 0.1 as Caffe did
    crops_flips: bool = True  # §4.1 augmentation 1: random crops and horizontal flips
    pca_colour: bool = True  # §4.1 augmentation 2: PCA colour noise
    seed: int = 0
    device: str = "auto"  # "auto" (cuda, then mps, then cpu) | "cpu" | "cuda" | "cuda:N" | "mps"
    precision: str = "auto"  # "auto" (bf16 autocast where supported) | "bf16" | "fp32"
    channels_last: bool = True  # NHWC activations (on GPUs and CPUs: 1.27× faster for the scaled net on a 2-core Xeon)
    compile: bool = False  # torch.compile the network
    data_on_device: bool = False  # hold the uint8 training set on the device, batches made there (device_data.py)
    deterministic: bool = False  # torch.use_deterministic_algorithms; with fp32 on a CPU, runs repeat bitwise
    eval_every: int = 1  # epochs between validations (the plateau rule reads them)
    # at each validation also score this many training images (a fixed subset) in eval mode -- centre crop, no
    # augmentation, no dropout -- so that overfitting is measured as validation minus this error; 0: not measured
    train_eval_size: int = 0
    ten_crop: bool = True  # the final evaluation also with 10 crops (§4.1, §6)
    checkpoint_every: int | None = None  # also checkpoint every N steps (besides every epoch's end)
    log_every: int = 50  # steps between rows of the metrics log
    out_dir: str = "runs"  # where run folders and the results store live

    def hash(self) -> str:
        """Names a finished run: identical configurations (wherever stored) share it.

        Fields added after runs were recorded (``LATER_FIELDS``) are left out while at their default, so that
        existing results stores keep matching."""
        return config_hash({k: v for k, v in asdict(self).items()
                            if k != "out_dir" and not (k in LATER_FIELDS and v == LATER_FIELDS[k])})

    def run_hash(self) -> str:
        """Names a run's folder and checkpoint: everything that shapes the trajectory, so that a run stopped by
        ``max_steps`` is continued (not restarted) by the same configuration with a larger budget."""
        skip = {"out_dir", "max_steps", "stop_train_error", "ten_crop", "log_every", "checkpoint_every",
                "train_eval_size", "data_on_device"}  # data_on_device: the same batches either way
        if self.schedule == "constant":  # the learning rate never looks at the length: more epochs continue it
            skip |= {"epochs", "eval_every"}
        return config_hash({k: v for k, v in asdict(self).items()
                            if k not in skip and not (k in LATER_FIELDS and v == LATER_FIELDS[k])})

    def run_dir(self) -> Path:
        from .runs import runs_dir  # "runs" (the default) is the book's runs folder, wherever the caller is

        return runs_dir(self.out_dir) / f"{self.data}-{self.model}-{self.run_hash()}"

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """A config from a saved dict (config.json, a checkpoint), ignoring fields this version does not know."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


# Named recipes.  "paper" is §5 as written.  "quick" is the book's CPU recipe for CIFAR-10 (see docs/training.md
# for what it reached and how long it took): the paper's network and augmentation, with a short warm-up and a
# linear decay instead of the plateau rule, since a 15-minute budget has no room for plateaus.
# Every CPU recipe feeds the input ×1/64 (He initialisation keeps the signal's scale) and divides LRN's α by
# (1/64)² to match, so LRN divides by what it would on the paper's 0-255 input (§3.3; without it the layer is a
# constant ×k^-β); pools round up as cuda-convnet's do, so overlapping and non-overlapping pooling give the same
# map sizes (§3.4).  "study" is the ablation study's budget (docs/ablations.md): 5,000 training images (and
# 5,000 validation images), small enough that a network without dropout or without crops can overfit them within
# 12 epochs on a 2-core CPU, with overfitting measured in eval mode on 1,000 of them.
RECIPES = {
    "paper": {},
    "quick": dict(data="cifar10", scale="scaled", epochs=10, lr=0.04, schedule="linear", warmup_epochs=0.5,
                  input_scale=1 / 64, lrn_follows_input_scale=True, model_options={"pool_rounding": "ceil"},
                  init_std="he", init_bias=0.1, bias_like_authors=True),
}
RECIPES["smoke"] = {**RECIPES["quick"], "limit": 512, "epochs": 1, "batch_size": 64, "warmup_epochs": 0.0,
                    "log_every": 2}  # the quick recipe on a few hundred images: seconds
RECIPES["study"] = {**RECIPES["quick"], "limit": 5_000, "epochs": 12, "train_eval_size": 1_000}


def recipe(name: str = "paper", **overrides) -> TrainConfig:
    """A TrainConfig from a named recipe ("paper", "quick", "smoke") with ``overrides`` applied."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}")
    return TrainConfig(**{**RECIPES[name], **overrides})


@dataclass
class RunResult:
    """A finished run: its config, folder, final metrics (errors as fractions 0-1), log and trained network."""

    config: TrainConfig
    run_dir: Path
    metrics: dict
    history: "pandas.DataFrame"
    model: torch.nn.Module | None
    reused: bool


# ---------------------------------------------------------------------------------------------------------------
# The pieces of the recipe


def pick_device(name: str = "auto") -> torch.device:
    """The device to train on: the one named, or the best present (cuda, then mps, then cpu).

    A named device that is not usable here is a ValueError (one line), before any work is done."""
    if name != "auto":
        return check_device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), which makes bf16 autocast pay."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def pick_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype (None = plain fp32): "auto" takes bf16 on GPUs that have it and on bf16-capable CPUs."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision != "auto":
        raise ValueError(f"unknown precision {precision!r}; choose 'auto', 'bf16' or 'fp32'")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_bf16() else None
    return None


def rank_seed(seed: int, rank: int, stream: int = 0) -> int:
    """The seed of one process's random stream (0: dropout through torch's generator, 1: augmentation).

    Rank 0 keeps the single-process seeds (``seed`` and ``seed + 1,000,003``), so one-process runs are unchanged;
    other ranks get a 63-bit mix of (seed, rank, stream), so that no two (seed, rank) pairs share a stream --
    ``seed + rank`` gave seed 0's rank 1 the masks of seed 1's rank 0.
    """
    if rank == 0:
        return seed + 1_000_003 * stream
    import numpy as np

    return int(np.random.SeedSequence([seed, rank, stream]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def build_network(config: TrainConfig, num_classes: int, crop: int) -> torch.nn.Module:
    """The network the config names, sized for the data: its class count, and "scaled" for 32 px crops."""
    from .model import build_model, paper_init_

    scale = config.scale if config.scale in ("scaled", "full") else ("scaled" if crop <= 64 else "full")
    model = build_model(config.model, **{"num_classes": num_classes, "scale": scale, **config.model_options})
    if config.init_std is not None or config.init_bias is not None:
        if config.model != "alexnet" or config.model_options.get("init", "paper") != "paper":
            raise ValueError(f"init_std/init_bias change the paper's initialisation of the alexnet model; drop them "
                             f"for model {config.model!r} with options {config.model_options}")
        std = config.init_std if isinstance(config.init_std, (int, float)) else paper.RECIPE["init_std"]
        paper_init_(model, std=std, bias_value=1.0 if config.init_bias is None else config.init_bias)
        if config.init_std == "he":  # He et al. (2015), not the paper: keeps the signal's scale through the layers
            for module in model.modules():
                if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                    torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        elif not isinstance(config.init_std, (int, float, type(None))):
            raise ValueError(f"init_std must be a number, 'he' or None, not {config.init_std!r}")
    if config.lrn_follows_input_scale and config.input_scale != 1.0:
        from .layers import scale_lrn_alpha_

        scale_lrn_alpha_(model, config.input_scale)
    model.input_scale = config.input_scale  # read by evaluate(), so a trained network is scored as it was trained
    return model


def parameter_groups(model: torch.nn.Module, config: TrainConfig) -> list[dict]:
    """§5 weight decay on every parameter, or -- as the authors' code did -- biases without decay at 2× lr.

    Each group carries ``lr_scale``; the learning rate of a group is always ``lr_scale`` × the current ε.
    """
    if not config.bias_like_authors:
        return [{"params": list(model.parameters()), "weight_decay": config.weight_decay, "lr_scale": 1.0}]
    weights = [p for p in model.parameters() if p.ndim > 1]
    biases = [p for p in model.parameters() if p.ndim <= 1]
    return [{"params": weights, "weight_decay": config.weight_decay, "lr_scale": 1.0},
            {"params": biases, "weight_decay": 0.0, "lr_scale": 2.0}]


class Plateau:
    """§5: "divide the learning rate by 10 when the validation error rate stopped improving" (at most ``max_drops``).

    The error has stopped improving when ``patience`` validations in a row were no better than the best so far.
    """

    def __init__(self, patience: int = 3, max_drops: int = paper.RECIPE["lr_drops"]):
        self.patience, self.max_drops = patience, max_drops
        self.best, self.bad, self.drops = math.inf, 0, 0

    def update(self, val_error: float) -> bool:
        """Record one validation error; True when the learning rate should drop now."""
        if val_error < self.best:
            self.best, self.bad = val_error, 0
            return False
        self.bad += 1
        if self.bad >= self.patience and self.drops < self.max_drops:
            self.drops, self.bad = self.drops + 1, 0
            return True
        return False

    def state_dict(self) -> dict:
        return {"best": self.best, "bad": self.bad, "drops": self.drops}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.bad, self.drops = state["best"], state["bad"], state["drops"]


def learning_rate(config: TrainConfig, step: int, total_steps: int, steps_per_epoch: int, drops: int) -> float:
    """ε at an optimiser step: 0.01 ÷ 10 per plateau drop (§5), times the warm-up and "linear" factors if chosen."""
    lr = config.lr / paper.RECIPE["lr_drop_factor"] ** drops
    warmup = config.warmup_epochs * steps_per_epoch
    if step < warmup:
        lr *= (step + 1) / warmup
    if config.schedule == "linear":
        lr *= max(0.0, 1.0 - step / max(total_steps, 1))
    return lr


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of the training images in one epoch: a permutation drawn from a generator seeded by (seed, epoch)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def rng_state(device: torch.device, augment_rng: torch.Generator) -> dict:
    """Every random stream a step draws from: torch's (dropout), the device's, and the augmentation generator."""
    state = {"torch": torch.get_rng_state(), "augment": augment_rng.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    if device.type == "mps":
        state["mps"] = torch.mps.get_rng_state()
    return state


def set_rng_state(state: dict, device: torch.device, augment_rng: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    augment_rng.set_state(state["augment"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
    if device.type == "mps" and "mps" in state:
        torch.mps.set_rng_state(state["mps"])


class LivePlot:
    """Loss and error curves in a notebook, redrawn in place (one output, updated; no flicker, no new cells)."""

    def __init__(self, title: str):
        import matplotlib.pyplot as plt
        from IPython.display import display

        self.plt = plt
        self.fig, (self.ax_loss, self.ax_err) = plt.subplots(1, 2, figsize=(10, 3.4))
        self.fig.suptitle(title, fontsize=10)
        self.handle = display(self.fig, display_id=True)
        plt.close(self.fig)  # shown through the handle only, not again at the end of the cell
        self.last = 0.0

    def update(self, history: list[dict], force: bool = False) -> None:
        if not force and time.monotonic() - self.last < 1.0:
            return
        self.last = time.monotonic()
        steps = [r for r in history if r.get("train_loss") is not None]
        vals = [r for r in history if r.get("val_top1") is not None]
        self.ax_loss.clear()
        self.ax_err.clear()
        self.ax_loss.plot([r["step"] for r in steps], [r["train_loss"] for r in steps], lw=1, label="train loss")
        self.ax_loss.set_xlabel("step")
        self.ax_loss.set_ylabel("cross-entropy")
        self.ax_err.plot([r["step"] for r in steps], [r["train_error"] for r in steps], lw=1, label="train error")
        if vals:
            self.ax_err.plot([r["step"] for r in vals], [r["val_top1"] for r in vals], "o-", label="val top-1")
            self.ax_err.plot([r["step"] for r in vals], [r["val_top5"] for r in vals], "s-", label="val top-5")
        self.ax_err.set_xlabel("step")
        self.ax_err.set_ylabel("error")
        self.ax_err.set_ylim(0, 1)
        self.ax_err.legend(loc="upper right", fontsize=8)
        self.handle.update(self.fig)


class TensorBoardLogger:
    """A ``train(loggers=...)`` hook writing every metrics row to TensorBoard (``torch.utils.tensorboard``).

    ``writer``: a ``SummaryWriter`` (or anything with ``add_scalar(tag, value, step)``); by default one is made
    in ``log_dir`` (needs the ``tensorboard`` package: ``pip install tensorboard``).
    """

    def __init__(self, log_dir: str | None = None, writer=None):
        if writer is None:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(log_dir)
        self.writer = writer

    def __call__(self, row: dict) -> None:
        step = int(row["step"])
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and math.isfinite(value):
                self.writer.add_scalar(key, value, step)


def in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


# ---------------------------------------------------------------------------------------------------------------
# Training


def train(config: TrainConfig, *, progress: bool = True, live_plot: bool = False, callback=None,
          store: ResultsStore | None = None, reuse: bool = True, splits=None, loggers=()) -> RunResult:
    """Train one network with the §5 recipe and return its final metrics, log and weights.

    Resumes from ``run_dir/checkpoint.pt`` when one exists (exactly: model, optimiser, plateau state, step,
    every random stream).  When ``reuse`` and the results store already holds a finished run with the same
    ``config.hash()``, that run is returned (``reused=True``) instead of training again.  ``callback(event)``
    is called after each validation with the metrics row plus "model" (the network) and "run_dir".
    ``splits`` lets a caller pass a loaded ``DataSplits`` instead of ``load_dataset(config.data, ...)``.
    ``loggers``: callables given every row the metrics log receives (a dict: step, epoch, lr, train_loss, ...),
    e.g. ``TensorBoardLogger()`` or ``print``.  A network of your own trains the same way once registered
    (``model.register_model``; ``TrainConfig(model=its name)``).
    Under torchrun (WORLD_SIZE > 1) every rank calls this; only rank 0 logs, checkpoints and records.
    """
    check_config(config)  # nonsense settings are refused before any work, with nothing recorded
    # -- processes: one, or torchrun's ranks ------------------------------------------------------------------
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(config.device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    started_group = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        started_group = True
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    held = contextlib.ExitStack()
    try:
        if rank == 0:  # one process trains in a run folder: an identical run waits here, then finds the result
            held.enter_context(run_lock(config.run_dir()))
        return _train(config, device, rank, world, progress=progress and rank == 0,
                      live_plot=live_plot and rank == 0 and in_notebook(), callback=callback, store=store,
                      reuse=reuse, splits=splits, loggers=tuple(loggers) if rank == 0 else ())
    finally:
        held.close()
        torch.use_deterministic_algorithms(was_deterministic)  # leave the caller's process as it was
        if started_group:
            dist.destroy_process_group()


def _train(config, device, rank, world, *, progress, live_plot, callback, store, reuse, splits,
           loggers=()) -> RunResult:
    key = config.hash()
    run_dir = config.run_dir()
    store = store if store is not None else ResultsStore(run_dir.parent / "results.jsonl")
    say = (lambda *a: print(*a, flush=True)) if progress else (lambda *a: None)

    # -- an identical finished run is looked up, not repeated -------------------------------------------------
    found = store.find(key) if reuse and rank == 0 else None
    if world > 1:
        box = [found]
        dist.broadcast_object_list(box, src=0)
        found = box[0]
    if found is not None:
        check_same_data(found.get("data_identity"), config, splits, f"the finished run in {found.get('run_dir')}")
        say(f"run {key}: reusing the finished run in {found.get('run_dir')} (reuse=False trains again)")
        return reused_result(config, found, device)

    # -- data, network, optimiser ------------------------------------------------------------------------------
    if config.batch_size % world:
        raise ValueError(f"batch_size {config.batch_size} does not split over {world} processes; "
                         f"choose a multiple of {world}")
    if config.schedule not in ("plateau", "constant", "linear"):
        raise ValueError(f"unknown schedule {config.schedule!r}; choose 'plateau', 'constant' or 'linear'")
    if config.deterministic:
        torch.use_deterministic_algorithms(True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if splits is None:
        from .data import load_dataset

        # Every rank opens the data itself.  The first to need the cache builds it under the cache's file lock
        # while the others wait on that lock -- not in a collective, whose timeout (10 minutes by default) a
        # first ImageNet build would exceed -- and then map the finished cache.  With a data folder per node,
        # each node builds its own (under its own lock), and no collective waits on it.
        splits = load_dataset(config.data, config.root, scale=config.scale, limit=config.limit, progress=progress)
    from .data import data_identity, same_data

    data_id = data_identity(splits)  # the data actually opened: recorded with the run, checked on resume and reuse
    precision = pick_precision(config.precision, device)
    channels_last = config.channels_last  # NHWC: faster on GPUs, and on this CPU too (docs/benchmarks.md)

    torch.manual_seed(config.seed)  # the paper's initialisation (§5) draws from torch's generator
    net = build_network(config, len(splits.classes), splits.crop).to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(parameter_groups(net, config), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    plateau = Plateau(config.patience, config.max_drops)
    torch.manual_seed(rank_seed(config.seed, rank))  # dropout masks differ between ranks
    augment_rng = torch.Generator().manual_seed(rank_seed(config.seed, rank, stream=1))  # crops, flips, PCA noise

    local_batch = config.batch_size // world
    steps_per_epoch = len(splits.train) // config.batch_size  # the last partial batch is dropped
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size {config.batch_size} exceeds the {len(splits.train)} training images; "
                         f"lower --batch-size or raise --limit")
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    mean_image = splits.mean_image.to(device)
    pca = (splits.pca_eigvals.to(device), splits.pca_eigvecs.to(device)) if config.pca_colour else None
    val_share = shard(splits.val, rank, world)
    # a fixed subset of the training images (the same for every seed and variant), scored like validation
    train_probe = None
    if config.train_eval_size:
        pick = torch.randperm(len(splits.train), generator=torch.Generator().manual_seed(0))
        pick = pick[:config.train_eval_size].sort().values
        train_probe = shard(dataclasses.replace(splits.train, images=splits.train.images[pick],
                                                labels=splits.train.labels[pick]), rank, world)
    feed = None
    if config.data_on_device:  # the uint8 training set held on the device; the same batches, made there
        from .device_data import DeviceFeed

        feed = DeviceFeed(splits.train.images, mean_image, splits.crop, device=device, pca=pca,
                          crops_flips=config.crops_flips)

    # -- resume from the run's checkpoint ----------------------------------------------------------------------
    checkpoint_path = run_dir / "checkpoint.pt"
    step, epoch, batch, wall_before, train_s, images_seen = 0, 0, 0, 0.0, 0.0, 0
    epoch_sums = torch.zeros(3, dtype=torch.float64)  # this rank's loss sum, errors, images in this epoch
    last_val: dict = {}  # the latest validation (top1, top5, loss, step)
    last_train: dict = {}  # the latest finished epoch's train_loss and train_error
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.json", json.dumps(asdict(config), indent=2, sort_keys=True) + "\n")
    if world > 1:
        dist.barrier()
    log = MetricsLog(run_dir / "metrics.csv") if rank == 0 else None
    state = load_checkpoint(checkpoint_path) if rank == 0 and checkpoint_path.exists() else None
    if world > 1:  # rank 0's run folder decides: every rank resumes from the state it read (or none starts from it)
        box = [state]
        dist.broadcast_object_list(box, src=0)
        state = box[0]
    if state is not None and config.max_steps is not None and state["step"] > config.max_steps:
        say(f"{checkpoint_path} is at step {state['step']}, past max_steps={config.max_steps}; starting afresh")
        state = None
    if state is not None and not reuse and state["step"] >= total_steps:
        say(f"{checkpoint_path} holds a finished run and reuse=False: training again from the start")
        state = None
    if state is not None and not same_data(state.get("data_identity"), data_id):
        if reuse:  # a run is never continued on other data: refused here (reuse=False starts it afresh)
            check_same_data(state.get("data_identity"), config, splits, str(checkpoint_path))
        say(f"{checkpoint_path} was written on other data and reuse=False: training again from the start")
        state = None
    if state is not None:
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        plateau.load_state_dict(state["plateau"])
        step, epoch, batch = state["step"], state["epoch"], state["batch"]
        wall_before, train_s, images_seen = state["wall_s"], state["train_s"], state["images"]
        last_val, last_train = state["last_val"], state["last_train"]
        if len(state["ranks"]) == world:
            mine = state["ranks"][rank]
            set_rng_state(mine["rng"], device, augment_rng)
            epoch_sums = mine["epoch_sums"].clone()
        else:
            say(f"{checkpoint_path} was written by {len(state['ranks'])} processes, now {world}: "
                f"random streams restart, so the continuation is not bitwise the same")
        if log is not None:
            log.truncate(state["log_rows"])  # drop rows logged after this checkpoint by a killed run
        say(f"resuming {run_dir} at epoch {epoch}, step {step}")
    elif log is not None:
        log.truncate(0)

    model = net
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda"
                                                          else None)
    if config.compile:
        model = torch.compile(model)
    autocast = (lambda: torch.autocast(device.type, dtype=precision)) if precision else contextlib.nullcontext
    say(f"run {key} in {run_dir}: {config.model} on {splits.name} ({len(splits.train)} train / {len(splits.val)} "
        f"val images, crop {splits.crop}), device {device}, {'bf16 autocast' if precision else 'fp32'}, "
        f"{world} process(es), {steps_per_epoch} steps per epoch")

    def all_sum(t: torch.Tensor) -> torch.Tensor:
        if world > 1:
            t = t.to(device)
            dist.all_reduce(t)
        return t.cpu()

    def validate() -> dict:
        """Every validation image scored once: each rank its shard, the counts summed (§6)."""
        r = evaluate(net, val_share, mean_image, splits.crop, device=device, precision=precision,
                     batch_size=max(local_batch, 64), input_scale=config.input_scale)
        c = all_sum(torch.tensor([r["top1_correct"], r["top5_correct"], r["loss"] * r["n"], r["n"]],
                                 dtype=torch.float64))
        out = {"top1": 1 - c[0].item() / c[3].item(), "top5": 1 - c[1].item() / c[3].item(),
               "loss": c[2].item() / c[3].item(), "step": step}
        if train_probe is not None:  # overfitting: the same measurement on training images (eval mode, centre crop)
            r = evaluate(net, train_probe, mean_image, splits.crop, device=device, precision=precision,
                         batch_size=max(local_batch, 64), input_scale=config.input_scale)
            c = all_sum(torch.tensor([r["top1_correct"], r["n"]], dtype=torch.float64))
            out["train_eval"] = 1 - c[0].item() / c[1].item()
        return out

    def write_checkpoint() -> None:
        """Everything needed to continue exactly; ranks' random streams are gathered to rank 0 (§5 resumability)."""
        mine = {"rng": rng_state(device, augment_rng), "epoch_sums": epoch_sums.clone()}
        ranks = [None] * world
        if world > 1:
            dist.all_gather_object(ranks, mine)
        else:
            ranks = [mine]
        if rank == 0:
            save_checkpoint(checkpoint_path, {
                "model": net.state_dict(), "optimizer": optimizer.state_dict(), "plateau": plateau.state_dict(),
                "step": step, "epoch": epoch, "batch": batch, "wall_s": wall_before + time.perf_counter() - t0,
                "train_s": train_s, "images": images_seen, "last_val": last_val, "last_train": last_train,
                "log_rows": len(log),
                "ranks": ranks, "config": asdict(config), "world_size": world, "data_identity": data_id})

    def set_lr() -> float:
        lr = learning_rate(config, step, config.epochs * steps_per_epoch, steps_per_epoch, plateau.drops)
        for group in optimizer.param_groups:
            group["lr"] = group["lr_scale"] * lr
        return lr

    # -- the loop ---------------------------------------------------------------------------------------------
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    history = log.read().to_dict("records") if log is not None and len(log) else []
    plot = LivePlot(f"{config.model} on {splits.name} · run {key}") if live_plot else None
    epochs_bar = tqdm(total=config.epochs, initial=epoch, desc="epochs", unit="epoch", disable=not progress,
                      file=sys.stdout)
    window_t, window_images = time.perf_counter(), 0
    epoch_train_s, epoch_images = 0.0, 0  # this epoch's time in training steps (for the epoch row's images/s)
    lr = learning_rate(config, step, config.epochs * steps_per_epoch, steps_per_epoch, plateau.drops)
    model.train()
    while epoch < config.epochs and step < total_steps:
        order = epoch_order(len(splits.train), config.seed, epoch)
        steps_bar = tqdm(total=steps_per_epoch, initial=batch, desc=f"epoch {epoch + 1}", unit="step",
                         leave=False, disable=not progress, file=sys.stdout)
        while batch < steps_per_epoch and step < total_steps:
            step_t = time.perf_counter()
            lr = set_lr()
            start = batch * config.batch_size + rank * local_batch
            index = order[start:start + local_batch]
            if feed is not None:
                upcoming = order[start + config.batch_size:start + config.batch_size + local_batch]
                x = feed.batch(index, augment_rng, upcoming=upcoming)
            else:
                x = train_batch(splits.train.images[index], mean_image, splits.crop, crops_flips=config.crops_flips,
                                pca=pca, generator=augment_rng, device=device)
            if config.input_scale != 1.0:
                x = x * config.input_scale
            # train_batch hands back NCHW with NHWC strides; convolutions follow their input's layout, so the
            # layout is chosen here
            x = x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            labels = splits.train.labels[index].to(device)
            with autocast():
                logits = model(x)
            loss = F.cross_entropy(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise FloatingPointError(
                    f"training loss is {loss_value} at step {step + 1} (epoch {epoch + 1}) of run {key} "
                    f"({run_dir}); config {json.dumps(asdict(config), sort_keys=True)}. Lower the learning rate "
                    f"(--lr) or set an input scale (--input-scale)")
            errors = (logits.detach().argmax(1) != labels).sum().item()
            epoch_sums += torch.tensor([loss_value * len(labels), errors, len(labels)], dtype=torch.float64)
            step, batch = step + 1, batch + 1
            images_seen += config.batch_size
            window_images += config.batch_size
            train_s += time.perf_counter() - step_t
            epoch_train_s += time.perf_counter() - step_t
            epoch_images += config.batch_size
            if progress:
                steps_bar.update(1)
                steps_bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.2g}",
                                      img_s=f"{config.batch_size / max(time.perf_counter() - step_t, 1e-9):.0f}")

            if step % config.log_every == 0:
                s = all_sum(torch.tensor([loss_value, errors, len(labels)], dtype=torch.float64))
                if rank == 0:
                    now = time.perf_counter()
                    row = {"step": step, "epoch": round(epoch + batch / steps_per_epoch, 4), "lr": lr,
                           "train_loss": s[0].item() / world, "train_error": s[1].item() / s[2].item(),
                           "images_per_s": round(window_images / max(now - window_t, 1e-9), 1),
                           "time": round(wall_before + now - t0, 3)}
                    log.append(row)
                    for logger in loggers:
                        logger(row)
                    history.append(row)
                    window_t, window_images = now, 0
                    if plot:
                        plot.update(history)
            if config.checkpoint_every and step % config.checkpoint_every == 0:
                write_checkpoint()
        steps_bar.close()
        if batch < steps_per_epoch:
            break  # the step budget ran out mid-epoch

        # -- end of an epoch: validate, apply the plateau rule (§5), log, checkpoint ------------------------------
        s = all_sum(epoch_sums.clone())
        last_train = {"train_loss": s[0].item() / s[2].item(), "train_error": s[1].item() / s[2].item()}
        epoch, batch = epoch + 1, 0
        epoch_sums.zero_()
        row = {"step": step, "epoch": epoch, "lr": lr, **last_train}
        if epoch % config.eval_every == 0 or epoch == config.epochs:
            last_val = validate()
            row.update(val_top1=last_val["top1"], val_top5=last_val["top5"])
            if "train_eval" in last_val:
                row["train_eval_error"] = last_val["train_eval"]
            if config.schedule == "plateau" and plateau.update(last_val["top1"]):
                say(f"epoch {epoch}: validation error stopped improving; learning rate ÷10 "
                    f"(drop {plateau.drops} of {config.max_drops})")
        if rank == 0:
            now = time.perf_counter()
            row.update(images_per_s=round(epoch_images / max(epoch_train_s, 1e-9), 1),
                       time=round(wall_before + now - t0, 3))
            log.append(row)
            for logger in loggers:
                logger(row)
            history.append(row)
            if plot:
                plot.update(history, force=True)
            if callback is not None:
                callback({**row, "model": net, "run_dir": run_dir, "config": config})
        window_t, window_images = time.perf_counter(), 0
        epoch_train_s, epoch_images = 0.0, 0
        epochs_bar.update(1)
        epochs_bar.set_postfix(loss=f"{last_train['train_loss']:.3f}", val_top1=f"{row.get('val_top1', float('nan')):.3f}")
        write_checkpoint()
        if config.stop_train_error is not None and last_train["train_error"] <= config.stop_train_error:
            say(f"epoch {epoch}: training error {last_train['train_error']:.4f} ≤ {config.stop_train_error} "
                "(stop_train_error): run ends here")
            break
    epochs_bar.close()
    if batch:  # stopped by max_steps mid-epoch: keep the place, so a larger budget continues from here
        write_checkpoint()

    # -- final evaluation (§6): centre crop, and 10 crops; record the run ---------------------------------------
    if last_val.get("step") != step:
        last_val = validate()
    metrics = {"val_top1_error": last_val["top1"], "val_top5_error": last_val["top5"], "val_loss": last_val["loss"]}
    if "train_eval" in last_val:
        metrics["train_eval_error"] = last_val["train_eval"]
        # the per-epoch curve, for "epochs to a training error" (§4.2's iterations to converge)
        metrics["train_eval_curve"] = [[r["epoch"], r["train_eval_error"]] for r in history
                                       if isinstance(r.get("train_eval_error"), float)
                                       and math.isfinite(r["train_eval_error"])]
    if config.ten_crop:
        r = evaluate(net, val_share, mean_image, splits.crop, ten_crop=True, device=device, precision=precision,
                     batch_size=max(local_batch, 16), input_scale=config.input_scale, progress=progress)
        c = all_sum(torch.tensor([r["top1_correct"], r["top5_correct"], r["n"]], dtype=torch.float64))
        metrics.update(val_top1_error_10crop=1 - c[0].item() / c[2].item(),
                       val_top5_error_10crop=1 - c[1].item() / c[2].item())
    s = all_sum(epoch_sums.clone())
    if s[2] > 0:  # the run ended mid-epoch: the partial epoch's training numbers
        metrics.update(train_loss=s[0].item() / s[2].item(), train_error=s[1].item() / s[2].item())
    else:
        metrics.update(last_train)
    wall_s = wall_before + time.perf_counter() - t0
    metrics.update(epochs=round(step / steps_per_epoch, 4), steps=step, wall_s=round(wall_s, 3),
                   images_per_s=round(images_seen / max(train_s, 1e-9), 1))
    if plot:
        plot.update(history, force=True)
    if rank == 0:
        model_path = run_dir / f"model-{key}.pt"
        save_checkpoint(model_path, {"model": net.state_dict(), "config": asdict(config), "metrics": metrics,
                                     "num_classes": len(splits.classes), "crop": splits.crop,
                                     "data_identity": data_id})
        store.add({"config_hash": key, "config": asdict(config), "data": splits.name, "seed": config.seed,
                   "metrics": metrics, "wall_s": metrics["wall_s"], "run_dir": str(run_dir.resolve()),
                   "model_path": str(model_path.resolve()), "device": str(device), "world_size": world,
                   "precision": "bf16" if precision else "fp32", "source": splits.source,
                   "data_identity": data_id})
        say("final: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()
                                  if not isinstance(v, list)))
    history_df = log.read() if log is not None else None
    return RunResult(config=config, run_dir=run_dir, metrics=metrics, history=history_df, model=net, reused=False)


def reused_result(config: TrainConfig, row: dict, device: torch.device) -> RunResult:
    """A RunResult rebuilt from the results store's row, its metrics log and its saved weights."""
    import pandas as pd

    run_dir = Path(row.get("run_dir", config.run_dir()))
    history = pd.read_csv(run_dir / "metrics.csv") if (run_dir / "metrics.csv").exists() else pd.DataFrame()
    model = None
    model_path = Path(row.get("model_path", run_dir / f"model-{config.hash()}.pt"))
    if model_path.exists():
        state = load_checkpoint(model_path)
        model = build_network(config, state["num_classes"], state["crop"])
        model.load_state_dict(state["model"])
        model.to(device)
    return RunResult(config=config, run_dir=run_dir, metrics=row["metrics"], history=history, model=model, reused=True)


def check_device(name: str) -> torch.device:
    """``torch.device(name)`` when that device is usable here, else a one-line ValueError saying why."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"unknown device {name!r}; choose auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r}: no usable CUDA GPU here (no GPU, no driver, or a CPU-only torch "
                             f"build); use --device auto or --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                             f"numbered from 0")
    elif device.type == "mps" and not (getattr(torch.backends, "mps", None) is not None
                                        and torch.backends.mps.is_available()):
        raise ValueError(f"device {name!r}: Apple's MPS is not available here; use --device auto or --device cpu")
    return device


def check_same_data(recorded: dict | None, config: TrainConfig, splits, what: str) -> None:
    """Refuse, in one line naming both, to reuse or resume ``what`` when it was trained on other data than the
    data this run opens now (e.g. root unset and $ALEXNET_BOOK_CIFAR10 pointing elsewhere, or the synthetic
    fallback).  Records without a data identity (written before it was recorded) and data that cannot be located
    now are not checked."""
    from .data import data_identity, dataset_identity, same_data

    if not recorded:
        return
    try:
        current = data_identity(splits) if splits is not None else \
            dataset_identity(config.data, config.root, scale=config.scale, limit=config.limit)
    except FileNotFoundError:
        return
    if not same_data(recorded, current) and splits is None:
        # the keys differ: build (or open) today's cache, so that its decoded content can be compared with the
        # recorded cache's (the same archive under a key made another way is the same data)
        from .data import load_dataset

        current = data_identity(load_dataset(config.data, config.root, scale=config.scale, limit=config.limit,
                                             progress=False))
    if not same_data(recorded, current):
        raise ValueError(f"{what} was trained on {recorded.get('source')} (cache {recorded.get('cache_key') or '-'})"
                         f", but this run opens {current['source']} (cache {current['cache_key'] or '-'}); give "
                         f"--root to make it a run of its own, or another --out-dir, or --no-reuse to train again "
                         f"in its place")


def check_config(config: TrainConfig) -> None:
    """Refuse settings that cannot make a run, in one line, before data is opened or anything is recorded."""
    for name in ("epochs", "batch_size", "eval_every", "log_every") + (("max_steps",) if config.max_steps
                                                                        is not None else ()):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number of at least 1 (--{name.replace('_', '-')}), "
                             f"not {value!r}")
    if config.precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"unknown precision {config.precision!r}; choose auto, bf16 or fp32 (fp16 is not offered: "
                         f"it needs loss scaling, which this recipe does not do)")


# ---------------------------------------------------------------------------------------------------------------
# Command line: alexnet-book train (and python -m alexnet_book.train, which torchrun runs on every rank)

HELP = {
    "data": "data set: auto | cifar10 | imagenet | imagenet-subset | imagenette | imagewoof | synthetic",
    "root": "the data set's folder or archive (default: found automatically; ImageNet needs it)",
    "scale": "scaled (36 px stored, 32 px crops, the CPU track) | full (256 stored, 224 crops) | native (32 stored, "
             "32 crops: CIFAR-10's own pixels, Fig. 1); default: the data set's",
    "limit": "at most this many images per split, balanced over classes (smoke runs)",
    "model": "network: alexnet (the paper's) | torchvision (one weird trick) | fourlayer (the Fig. 1 CIFAR net)",
    "model_options": "build_model option KEY=VALUE (repeatable; JSON values), e.g. towers=1, lrn=null, dropout=0",
    "epochs": "passes over the training set (§5: about 90)",
    "max_steps": "stop after this many optimiser steps; the same command with a larger budget continues the run",
    "stop_train_error": "end the run after the first epoch whose training error is at or below this (e.g. 0.25)",
    "batch_size": "global batch (§5: 128), split across processes under torchrun",
    "lr": "initial learning rate ε (§5: 0.01)",
    "momentum": "SGD momentum (§5: 0.9)",
    "weight_decay": "weight decay (§5: 0.0005)",
    "bias_like_authors": "biases without weight decay and at 2× lr, as cuda-convnet2 and Caffe did",
    "schedule": "plateau (§5: lr ÷10 when validation error stops improving) | constant | linear (decay to 0)",
    "patience": "validations without improvement before a plateau drop",
    "max_drops": "most plateau drops (§5: 3)",
    "warmup_epochs": "linear learning-rate warm-up over this many epochs (not in the paper; 0 = none)",
    "input_scale": "multiply the mean-subtracted 0-255 input by this (1 = the paper's raw units)",
    "lrn_follows_input_scale": "divide LRN's alpha by input_scale², so LRN divides by what it would on 0-255 input",
    "init_std": "std of the §5 Gaussian initialisation instead of 0.01, or 'he' for √(2/fan-in) per layer "
                "(alexnet; not in the paper)",
    "init_bias": "the bias of conv2, conv4, conv5, fc6 and fc7 at initialisation instead of §5's 1 (Caffe: 0.1)",
    "crops_flips": "§4.1 random crops and horizontal flips (--no-crops-flips: the centre crop)",
    "pca_colour": "§4.1 PCA colour noise",
    "seed": "random seed (initialisation, data order, augmentation, dropout)",
    "device": "auto (cuda, mps, cpu) | cpu | cuda | cuda:N | mps",
    "precision": "auto (bf16 autocast where supported) | bf16 | fp32",
    "channels_last": "NHWC activations (faster on GPUs and on the CPUs measured)",
    "compile": "torch.compile the network",
    "data_on_device": "hold the uint8 training set on the device and make each batch there (GPUs: no input "
                      "pipeline; the same batches)",
    "deterministic": "deterministic algorithms (with fp32 on a CPU a run repeats bitwise)",
    "eval_every": "epochs between validations",
    "train_eval_size": "also score this many training images in eval mode at each validation (overfitting); 0: off",
    "ten_crop": "final evaluation also with 10 crops (§4.1, §6)",
    "checkpoint_every": "also write the checkpoint every N steps (it is always written at each epoch's end)",
    "log_every": "steps between rows of the metrics log",
    "out_dir": "folder for run folders and results.jsonl; runs: $ALEXNET_BOOK_RUNS, else <project>/runs",
}


def parse_value(text: str):
    """A command-line value as JSON when it parses (1, 0.5, null, true, "x"), else the string itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def build_parser():
    import argparse

    parser = argparse.ArgumentParser(
        prog="alexnet-book train",
        description="Train a network with the paper's recipe (§5): SGD, momentum 0.9, weight decay 5e-4, batch "
                    "128, lr 0.01 ÷10 on plateaus. The same code path as alexnet_book.train(); under torchrun "
                    "every process runs this command. Defaults are the paper's; --recipe quick is the book's CPU "
                    "recipe for CIFAR-10.",
        epilog="examples:\n"
               "  alexnet-book train --data cifar10 --model alexnet --scale scaled --recipe quick\n"
               "  alexnet-book train --data imagenet --root /data/imagenet --device cuda\n"
               "  torchrun --standalone --nproc_per_node=8 -m alexnet_book.train --data imagenet --root /data/imagenet",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="paper",
                        help="start from a named recipe (options given explicitly override it; default paper)")
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        text = f"{HELP[f.name]} (default: {default})"
        if f.name == "model_options":
            parser.add_argument("--model-option", dest="model_options", action="append", metavar="KEY=VALUE",
                                default=None, help=HELP[f.name])
        elif isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            # the annotation's first type ("int | None" -> int); a union of types parses as JSON or text
            parts = [t.strip() for t in str(f.type).split("|") if t.strip() != "None"]
            kind = {"int": int, "float": float}.get(parts[0], str) if len(parts) == 1 else parse_value
            parser.add_argument(flag, type=kind, default=None, help=text)
    parser.add_argument("--no-reuse", action="store_true", help="train even if an identical finished run exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or messages")
    return parser


def config_from_args(args) -> TrainConfig:
    overrides = {}
    for f in dataclasses.fields(TrainConfig):
        value = getattr(args, f.name)
        if value is None:
            continue
        if f.name == "model_options":
            options = {}
            for item in value:
                if "=" not in item:
                    raise ValueError(f"--model-option {item!r}: write KEY=VALUE, e.g. --model-option towers=1")
                k, v = item.split("=", 1)
                options[k] = parse_value(v)
            value = options
        overrides[f.name] = value
    return recipe(args.recipe, **overrides)


def cli_main(argv: list[str]) -> int:
    """``alexnet-book train ...``: one run, printed as it goes and recorded in the results store."""
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        result = train(config, progress=not args.quiet, reuse=not args.no_reuse)
    except (ValueError, FileNotFoundError, FloatingPointError) as error:
        print(f"alexnet-book train: {error}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        m = result.metrics
        text = f"top-1 error {100 * m['val_top1_error']:.2f}%, top-5 error {100 * m['val_top5_error']:.2f}%"
        if "val_top1_error_10crop" in m:
            text += (f"; 10 crops: {100 * m['val_top1_error_10crop']:.2f}% / "
                     f"{100 * m['val_top5_error_10crop']:.2f}%")
        print(f"{result.run_dir}: {text}{' (reused)' if result.reused else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(sys.argv[1:]))
