"""``alexnet-book gpu-check``: one prepared run on a GPU machine that measures what PAPER.md §7 asks about.

Run once on an H100/H200 (``bash scripts/gpu_check.sh``; no network needed) within a time budget (default
400 s, so that with installation it ends inside 8 minutes), it writes ``gpu_check_<card>.json`` and
``gpu_check_<card>.md`` (a section for docs/benchmarks.md naming the card) and the conv1 figure
``gpu_check_<card>_conv1.png``:

(a) bench -- the training step (forward + backward + SGD) of the paper's network and torchvision's at 224 px,
    batch 128-1024 × fp32/bf16 × channels_last × torch.compile (``throughput.compare``, the code behind
    ``alexnet-book bench train``), in priority order while the step's time lasts; images/s, TFLOP/s, MFU against
    the card's datasheet peak, peak memory;
(b) end to end -- ``train()`` of the paper's network at 224 px with ``data_on_device=True``: the uint8 cache on
    the GPU, crops/flips/PCA noise/mean made there, loss read every step: images/s with the data path included,
    on a synthetic ImageNet-like set (random 256 px pixels, 1000 classes, made on the GPU) and on CIFAR-10
    upsampled to 256 (when the archive is in .gpu/);
(c) scaled -- the 32 px CPU-track network's training images/s on CIFAR-10 and what a 2-hour CPU ablation study
    costs on the card;
(d) two towers -- the full-size two-tower network trained on CIFAR-10 at 224 for the minutes left; its conv1
    kernels (Fig. 3) and the towers' colour specialisation (towers.py, §6.1).

Then projections from the measured numbers (90 ImageNet epochs on one card and on eight) against the targets.
Every step is guarded: a failure is recorded in the JSON and the next step runs.  The JSON is rewritten after
every step, so a run cut short still leaves what it measured.  ``--dry-run`` runs every step on the CPU at toy
sizes (the 32 px networks, a few images, a few steps) in well under a minute: it checks the plumbing, and
its numbers are not measurements.

The package: ``plan`` (sizes, targets, the card), ``datasets`` and ``timing`` (what the steps train on and how they
time it), ``steps`` ((a)-(d)), ``report`` (projections, the Markdown), ``run`` (``run_check``).  This ``__init__``
exports the public API; the command line is ``alexnet_book.commands.gpu_check``.
"""
from __future__ import annotations

from .datasets import cifar_splits, find_cifar10, resize_on_device, synthetic_imagenet
from .plan import (CPU_ABLATION_IMAGES_PER_S, CPU_STUDY_HOURS, DEFAULT_BUDGET_S, EPOCHS, FP32_DATASHEET,
                   IMAGENET_TRAIN_IMAGES, QUICK_TABLE_IMAGES, STEPS, TARGETS, TITLES, Plan, card_name, card_slug,
                   peaks)
from .report import hours_for_epochs, markdown, projections
from .context import Check
from .run import run_check
from .steps import STEP_FUNCTIONS, step_bench, step_end_to_end, step_scaled, step_two_tower
from .timing import steps_for, timed_train, window_rate

__all__ = ["CPU_ABLATION_IMAGES_PER_S", "CPU_STUDY_HOURS", "DEFAULT_BUDGET_S", "EPOCHS", "FP32_DATASHEET",
           "IMAGENET_TRAIN_IMAGES", "QUICK_TABLE_IMAGES", "STEPS", "STEP_FUNCTIONS", "TARGETS", "TITLES", "Check",
           "Plan", "card_name", "card_slug", "cifar_splits", "find_cifar10", "hours_for_epochs", "markdown",
           "peaks", "projections", "resize_on_device", "run_check", "step_bench", "step_end_to_end", "step_scaled",
           "step_two_tower", "steps_for", "synthetic_imagenet", "timed_train", "window_rate"]
