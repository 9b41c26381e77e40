"""The pieces of the paper's recipe (§5): parameter groups, the plateau rule, the learning rate, the data order.

"We trained our models using stochastic gradient descent with a batch size of 128 examples, momentum of 0.9,
and weight decay of 0.0005 ... The learning rate was initialized at 0.01 ... divide the learning rate by 10
when the validation error rate stopped improving ... The learning rate was reduced three times prior to
termination." (§5)  ``train`` puts them together.
"""
from __future__ import annotations

import math

import torch

from . import paper
from .config import TrainConfig


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
