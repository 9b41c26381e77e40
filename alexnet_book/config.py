"""Every knob of a training run (§5): ``TrainConfig``, the named recipes, and what a finished run returns.

A configuration is saved with its run as config.json and hashed to name it (``TrainConfig.hash`` names the
finished run in the results store, ``TrainConfig.run_hash`` its folder and checkpoint).
"""
from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from . import paper
from .runs import config_hash

SCHEDULES = ("plateau", "constant", "linear")  # TrainConfig.schedule (train.learning_rate, train.Plateau)
PRECISIONS = ("auto", "bf16", "fp32")  # TrainConfig.precision (devices.pick_precision); fp16 would need loss scaling

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



def check_config(config: TrainConfig) -> None:
    """Refuse settings that cannot make a run, in one line, before data is opened or anything is recorded."""
    for name in ("epochs", "batch_size", "eval_every", "log_every") + (("max_steps",) if config.max_steps
                                                                        is not None else ()):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number of at least 1 (--{name.replace('_', '-')}), "
                             f"not {value!r}")
    if config.precision not in PRECISIONS:
        raise ValueError(f"unknown precision {config.precision!r}; choose auto, bf16 or fp32 (fp16 is not offered: "
                         f"it needs loss scaling, which this recipe does not do)")

