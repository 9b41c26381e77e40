"""What the check measures and at what size (``Plan``: a card, or a dry run at toy sizes), its targets, and the
card it runs on (name, file-name tag, peak TFLOP/s for MFU)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

from .. import paper

TARGETS = {  # issue 20
    "mfu_bf16": 0.40,  # the paper network's training step, bf16
    "end_to_end_images_per_s": 30_000,  # at 224 px from the device-resident cache
    "hours_90_epochs_one_card": 2.0,
}
IMAGENET_TRAIN_IMAGES = 1_281_167  # ILSVRC-2012 training images ("1.2 million", §2)
EPOCHS = paper.RECIPE["epochs"]  # §5: about 90
FP32_DATASHEET = {"H100": 67.0, "H200": 67.0}  # non-tensor-core fp32 TFLOP/s (SXM); TF32 peaks in throughput.py
# docs/ablations.md: the quick ablation table trained its networks at ≈1,300 images/s on the 2-core CPU
CPU_ABLATION_IMAGES_PER_S = 1_300
CPU_STUDY_HOURS = 2.0
QUICK_TABLE_IMAGES = 14 * 2 * 50_000  # the quick table: 14 networks × 2 epochs × 50,000 CIFAR-10 images
DEFAULT_BUDGET_S = 400.0  # of the 8 minutes a GPU session gives the check (installation and start-up: the rest)
STEPS = ("bench", "end_to_end", "scaled", "two_tower")
TITLES = {"bench": "(a) Training step: paper network vs torchvision's",
          "end_to_end": "(b) End to end from the device-resident cache (train(), data path included)",
          "scaled": "(c) The scaled (32 px) network on CIFAR-10; cost of a CPU ablation study",
          "two_tower": "(d) Two-tower network on CIFAR-10 at 224 px for the minutes left"}


@dataclass
class Plan:
    """The sizes of one check: ``Plan.for_gpu()`` on a card, ``Plan.for_dry_run()`` on a CPU at toy size."""

    device: str
    dry: bool
    scale: str  # the "full" networks (224 px), or "scaled" (32 px) in a dry run
    stored: int  # stored side of the full-track sets (256; 36 dry)
    precision: str
    bench: list = field(default_factory=list)  # (batch, precision, channels_last, compile), in priority order
    bench_rounds: int = 3
    bench_steps: int = 5
    synthetic_images: int = 100_000
    synthetic_val: int = 1_000
    synthetic_classes: int = 1000
    e2e_batch: int = 512  # unless the bench found a faster batch
    e2e_seconds: float = 15.0  # per end-to-end run
    e2e_compile: bool = True
    cifar_limit: int | None = None
    scaled_batch: int = 128  # the recipe's batch (§5), as the ablations use it
    scaled_seconds: float = 12.0
    towers_batch: int = 256
    min_steps: int = 20
    shares: dict = field(default_factory=lambda: {"bench": 0.33, "end_to_end": 0.66, "scaled": 0.72})
    reserve_s: float = 15.0  # kept for the last writes

    @classmethod
    def for_gpu(cls, device: str = "cuda") -> "Plan":
        cl, bf, fp = True, "bf16", "fp32"
        bench = [(256, bf, cl, False), (512, bf, cl, False), (1024, bf, cl, False), (128, bf, cl, False),
                 (512, fp, cl, False), (512, bf, False, False), (1024, bf, cl, True), (256, fp, cl, False),
                 (1024, fp, cl, False), (128, fp, cl, False), (256, bf, cl, True), (512, fp, False, False),
                 (128, bf, False, False), (1024, bf, False, False), (512, fp, cl, True), (128, bf, cl, True)]
        return cls(device=device, dry=False, scale="full", stored=256, precision="bf16", bench=bench)

    @classmethod
    def for_dry_run(cls) -> "Plan":
        return cls(device="cpu", dry=True, scale="scaled", stored=36, precision="fp32",
                   bench=[(8, "fp32", True, False), (16, "fp32", True, False)], bench_rounds=2, bench_steps=1,
                   synthetic_images=96, synthetic_val=16, synthetic_classes=10, e2e_batch=8, e2e_seconds=1.0,
                   e2e_compile=False, cifar_limit=None, scaled_batch=16, scaled_seconds=1.0, towers_batch=8,
                   min_steps=4, reserve_s=2.0)


# ---------------------------------------------------------------------------------------------------------------
# The card


def card_name(device: torch.device) -> str:
    from ..devices import device_name

    return device_name(device)


def card_slug(name: str, device_type: str) -> str:
    """A short file-name tag for the card: "h200", "h100", "h100-pcie", ...; "cpu" off CUDA."""
    if device_type != "cuda":
        return "cpu"
    from ..throughput import GPU_PEAK_TFLOPS

    for key, _ in GPU_PEAK_TFLOPS:
        if key in name:
            return key.lower().replace(" ", "-")
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "gpu"


def peaks(device: torch.device, plan: Plan) -> dict:
    """Peak TFLOP/s per precision used for MFU, with where each comes from.

    CUDA: the datasheet's dense peak for a known card (bf16; fp32 as TF32, since cuDNN runs fp32 convolutions in
    TF32 by default, and the non-tensor fp32 figure beside it); elsewhere a large matmul timed now.
    """
    from ..throughput import datasheet_peak, peak_tflops

    out = {}
    for precision in ("bf16", "fp32"):
        peak, source = None, None
        if device.type == "cuda":
            peak = datasheet_peak(torch.cuda.get_device_name(device), precision, tf32=True)
            source = "datasheet" + (" (TF32)" if precision == "fp32" else "")
        if not peak:
            if precision == "bf16" and plan.dry:
                continue
            peak, source = peak_tflops(device, precision, 0.2 if plan.dry else 1.0)
        out[precision] = {"tflops": peak, "source": source}
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        fp32 = next((v for k, v in FP32_DATASHEET.items()
                     if k in name and "PCIe" not in name and "NVL" not in name), None)  # SXM figures only
        if fp32:
            out["fp32_non_tensor"] = {"tflops": fp32, "source": "datasheet"}
    return out
