"""Where a training run stands: ``TrainState`` (what it changes as it trains; ``state_dict`` is its checkpoint)
beside ``Run`` (what it works with, fixed once set up), and the random streams a step draws from.

A checkpoint (``run_dir/checkpoint.pt``) holds the network, the optimiser, the plateau rule, the step, epoch
and batch, the clocks, the latest validation and epoch numbers, the metrics log's length, every rank's random
streams and partial epoch sums, the config, the process count and the data's identity; ``train`` continues
from it exactly.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .config import TrainConfig
from .devices import Processes
from .progress import LivePlot
from .runs import MetricsLog, ResultsStore
from .sgd import Plateau


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



@dataclass
class Run:
    """What one run works with, fixed once it is set up: configuration, processes, data, places and reporting."""

    config: TrainConfig
    processes: Processes
    key: str  # config.hash(): names the finished run in the results store
    run_dir: Path
    store: ResultsStore
    say: Callable
    progress: bool
    splits: object = None
    data_id: dict | None = None  # the data actually opened: recorded with the run, checked on resume and reuse
    precision: torch.dtype | None = None  # the autocast dtype, None for fp32
    local_batch: int = 0  # this rank's share of every batch
    steps_per_epoch: int = 0
    total_steps: int = 0
    mean_image: torch.Tensor | None = None
    pca: tuple | None = None
    val_share: object = None  # this rank's share of the validation images
    train_probe: object = None  # this rank's share of the fixed training images scored in eval mode (or None)
    feed: object = None  # device_data.DeviceFeed when the training set is held on the device
    log: MetricsLog | None = None  # rank 0's metrics log
    model: torch.nn.Module | None = None  # the network as the steps call it (DDP-wrapped, compiled)
    loggers: tuple = ()
    callback: Callable | None = None
    plot: LivePlot | None = None

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint.pt"


@dataclass
class TrainState:
    """Everything a run changes as it trains; ``state_dict`` is its checkpoint (continued exactly on resume)."""

    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    plateau: Plateau
    augment_rng: torch.Generator  # crops, flips, PCA noise (§4.1)
    step: int = 0
    epoch: int = 0
    batch: int = 0  # batches done in the current epoch
    wall_before: float = 0.0  # wall seconds of earlier sessions of this run
    train_s: float = 0.0  # seconds spent in training steps
    images_seen: int = 0
    epoch_sums: torch.Tensor = field(default_factory=lambda: torch.zeros(3, dtype=torch.float64))  # this rank's
    # loss sum, errors, images in this epoch
    last_val: dict = field(default_factory=dict)  # the latest validation (top1, top5, loss, step)
    last_train: dict = field(default_factory=dict)  # the latest finished epoch's train_loss and train_error
    # this session only (not checkpointed): its start, the current ε, the rows logged, the throughput windows
    t0: float = 0.0
    lr: float = 0.0
    history: list = field(default_factory=list)
    window_t: float = 0.0
    window_images: int = 0
    epoch_train_s: float = 0.0  # this epoch's time in training steps (for the epoch row's images/s)
    epoch_images: int = 0

    def rank_state(self, device: torch.device) -> dict:
        """This rank's share of the checkpoint: its random streams and its partial epoch sums."""
        return {"rng": rng_state(device, self.augment_rng), "epoch_sums": self.epoch_sums.clone()}

    def state_dict(self, run: Run, ranks: list[dict]) -> dict:
        """Everything needed to continue exactly (§5 resumability); ``ranks``: every rank's ``rank_state``."""
        return {
            "model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
            "plateau": self.plateau.state_dict(), "step": self.step, "epoch": self.epoch, "batch": self.batch,
            "wall_s": self.wall_before + time.perf_counter() - self.t0, "train_s": self.train_s,
            "images": self.images_seen, "last_val": self.last_val, "last_train": self.last_train,
            "log_rows": len(run.log),
            "ranks": ranks, "config": asdict(run.config), "world_size": run.processes.world,
            "data_identity": run.data_id}

    def load_state_dict(self, state: dict, processes: Processes) -> bool:
        """Continue from a checkpoint; False when it was written by another number of processes (the random
        streams then restart)."""
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.plateau.load_state_dict(state["plateau"])
        self.step, self.epoch, self.batch = state["step"], state["epoch"], state["batch"]
        self.wall_before, self.train_s, self.images_seen = state["wall_s"], state["train_s"], state["images"]
        self.last_val, self.last_train = state["last_val"], state["last_train"]
        if len(state["ranks"]) != processes.world:
            return False
        mine = state["ranks"][processes.rank]
        set_rng_state(mine["rng"], processes.device, self.augment_rng)
        self.epoch_sums = mine["epoch_sums"].clone()
        return True
