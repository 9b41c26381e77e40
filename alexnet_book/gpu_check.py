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
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from . import paper

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
    from .devices import device_name

    return device_name(device)


def card_slug(name: str, device_type: str) -> str:
    """A short file-name tag for the card: "h200", "h100", "h100-pcie", ...; "cpu" off CUDA."""
    if device_type != "cuda":
        return "cpu"
    from .throughput import GPU_PEAK_TFLOPS

    for key, _ in GPU_PEAK_TFLOPS:
        if key in name:
            return key.lower().replace(" ", "-")
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "gpu"


def peaks(device: torch.device, plan: Plan) -> dict:
    """Peak TFLOP/s per precision used for MFU, with where each comes from.

    CUDA: the datasheet's dense peak for a known card (bf16; fp32 as TF32, since cuDNN runs fp32 convolutions in
    TF32 by default, and the non-tensor fp32 figure beside it); elsewhere a large matmul timed now.
    """
    from .throughput import datasheet_peak, peak_tflops

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


# ---------------------------------------------------------------------------------------------------------------
# Data for the checks: made or resized on the device


def resize_on_device(images: torch.Tensor, size: int, device: torch.device, chunk: int = 2048) -> torch.Tensor:
    """uint8 (N, s, s, 3) → (N, size, size, 3) on ``device``: bilinear, antialiased (§2's rescale, as the cache
    builder's ``data._centre_square_resize`` does on square images, within a grey level of it)."""
    n = images.shape[0]
    out = torch.empty((n, size, size, 3), dtype=torch.uint8, device=device)
    for i in range(0, n, chunk):
        x = images[i:i + chunk].to(device).permute(0, 3, 1, 2).float()
        y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[i:i + chunk] = y.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    return out


def synthetic_imagenet(plan: Plan, device: torch.device, seed: int = 0):
    """An ImageNet-shaped set made on the device: random uint8 pixels at the stored size, random labels of
    ``plan.synthetic_classes`` classes (what a training step costs does not depend on the pixels)."""
    from .data import DataSplits, ImageArrays, SCALES
    from .device_data import mean_and_pca

    g = torch.Generator(device=device).manual_seed(seed)
    crop = SCALES[plan.scale][1]

    def split(n):
        images = torch.randint(0, 256, (n, plan.stored, plan.stored, 3), dtype=torch.uint8, device=device,
                               generator=g)
        labels = torch.randint(0, plan.synthetic_classes, (n,), generator=torch.Generator().manual_seed(seed))
        return ImageArrays(images, labels)

    train, val = split(plan.synthetic_images), split(plan.synthetic_val)
    mean, eigvals, eigvecs = mean_and_pca(train.images)
    classes = [f"c{i:04d}" for i in range(plan.synthetic_classes)]
    return DataSplits("imagenet-like", train, val, classes, classes, mean, eigvals, eigvecs, crop,
                      f"random {plan.stored} px pixels made on {device}")


def find_cifar10(explicit: str | None = None) -> Path | None:
    """The CIFAR-10 archive: ``explicit``, else .gpu/cifar10-jpg.tar.gz (or any .gpu/*cifar*), else the book's
    usual places (``data.find_cifar10``)."""
    from . import data

    if explicit:
        return Path(explicit)
    gpu_dir = data.project_root() / ".gpu"
    candidates = [gpu_dir / "cifar10-jpg.tar.gz", *sorted(gpu_dir.glob("*cifar*"))] if gpu_dir.is_dir() else []
    for path in candidates:
        if path.exists():
            return path
    try:
        return data.find_cifar10()
    except FileNotFoundError:
        return None


def cifar_splits(ctx: "Check") -> dict:
    """CIFAR-10 decoded once at its own 32 px (the cache), then resized on the device to the full track's stored
    size (256; toy run: 36) and to the scaled track's 36: {"full": DataSplits, "scaled": DataSplits}."""
    from . import data
    from .device_data import mean_and_pca

    if ctx.cifar is not None:
        return ctx.cifar
    plan = ctx.plan
    if plan.dry:  # a stand-in with CIFAR-10's shape: 10 classes of 32 px JPEGs
        root = data.make_synthetic(ctx.work / "cifar-standin", classes=10, train_per_class=10, val_per_class=2,
                                   size=(32, 32))
        source, where = data.open_imagefolder("cifar10-standin", root), f"stand-in {root}"
    else:
        archive = find_cifar10(ctx.cifar_path)
        if archive is None:
            raise FileNotFoundError("no CIFAR-10 archive: copy cifar10-jpg.tar.gz into .gpu/ (or pass --cifar)")
        source, where = data.open_cifar10(archive), str(archive)
    if plan.cifar_limit:
        source.train = data.limit_images(source.train, plan.cifar_limit, len(source.classes))
    t0 = time.perf_counter()
    small = data.load_cache(data.build_cache(source, 32, ctx.cache, progress=False,
                                             workers=1 if plan.dry else None), crop=32)
    built = time.perf_counter() - t0
    out = {}
    for track, (size, crop) in (("full", data.SCALES[plan.scale]), ("scaled", data.SCALES["scaled"])):
        t1 = time.perf_counter()
        train = resize_on_device(small.train.images, size, ctx.device)
        val = resize_on_device(small.val.images, size, ctx.device)
        mean, eigvals, eigvecs = mean_and_pca(train)
        out[track] = data.DataSplits(
            "cifar10", data.ImageArrays(train, small.train.labels), data.ImageArrays(val, small.val.labels),
            small.classes, small.class_names, mean, eigvals, eigvecs, crop,
            f"{where}, decoded at 32 px, resized to {size} on {ctx.device}", small.cache)
        out[f"{track}_resize_s"] = time.perf_counter() - t1
    out["cache_s"], out["where"] = built, where
    ctx.cifar = out
    return out


# ---------------------------------------------------------------------------------------------------------------
# Timed training through train()


def window_rate(history, skip: int = 1) -> float | None:
    """Median images/s over the metrics log's step windows (epoch-end rows and the first ``skip`` windows --
    cuDNN's search, compilation -- left out)."""
    if history is None or len(history) == 0 or "images_per_s" not in history:
        return None
    rows = history[(history["epoch"] % 1 != 0) & history["images_per_s"].notna()]
    rates = list(rows["images_per_s"])[skip:]
    return float(statistics.median(rates)) if rates else None


def timed_train(ctx: "Check", splits, name: str, *, model_scale: str, batch: int, steps: int, compile: bool = False,
                data_on_device: bool = True, epochs: int = 1, ten_crop: bool = False, callback=None,
                keep: bool = False, **changes) -> dict:
    """``train()`` for ``steps`` steps (the book's quick recipe at constant lr unless ``changes`` say otherwise);
    its images/s and metrics.  ``keep``: leave the run folder (a later call with more steps continues it)."""
    from .runs import ResultsStore
    from .config import recipe
    from .train import train

    settings = dict(data=splits.name, scale=model_scale, batch_size=batch, epochs=epochs, max_steps=steps,
                    schedule="constant", warmup_epochs=0.0, lr=0.01, device=str(ctx.device),
                    precision=ctx.plan.precision, compile=compile, data_on_device=data_on_device, ten_crop=ten_crop,
                    log_every=max(1, steps // 8), checkpoint_every=None, out_dir=str(ctx.work / "runs" / name))
    config = recipe("quick", **{**settings, **changes})
    t0 = time.perf_counter()
    result = train(config, progress=False, reuse=False, splits=splits, callback=callback,
                   store=ResultsStore(ctx.work / "runs" / name / "results.jsonl"))
    wall = time.perf_counter() - t0
    m = result.metrics
    rate = window_rate(result.history, skip=2 if compile else 1) or m.get("images_per_s")
    row = {"name": name, "data": splits.name, "source": splits.source, "train_images": len(splits.train),
           "batch_size": batch, "precision": ctx.plan.precision, "channels_last": ctx.device.type == "cuda",
           "compiled": compile, "data_on_device": data_on_device, "steps": m.get("steps"),
           "images_per_s": rate, "images_per_s_whole_run": m.get("images_per_s"), "wall_s": round(wall, 2),
           "train_loss": m.get("train_loss"), "val_top1_error": m.get("val_top1_error")}
    if keep:
        row["_result"] = result
    else:
        shutil.rmtree(ctx.work / "runs" / name, ignore_errors=True)
    return row


def steps_for(seconds: float, rate: float | None, batch: int, plan: Plan, cap: int | None = None) -> int:
    """Steps that take about ``seconds`` at ``rate`` images/s (at least ``plan.min_steps``, at most ``cap``)."""
    steps = int(seconds * (rate or 1000.0) / batch) if rate else plan.min_steps
    steps = max(plan.min_steps, steps)
    return min(steps, cap) if cap else steps


# ---------------------------------------------------------------------------------------------------------------
# The four steps


def step_bench(ctx: "Check", until: float) -> dict:
    """(a) the training step of both networks over the plan's settings, in priority order, while time lasts."""
    from . import throughput

    plan, device = ctx.plan, ctx.device
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    models = throughput.networks(plan.scale)
    rows, skipped, cost = [], [], {False: 10.0 if not plan.dry else 0.5, True: 90.0}
    for batch, precision, channels_last, compile in plan.bench:
        label = f"batch={batch} {precision} channels_last={channels_last} compile={compile}"
        if precision not in ctx.peaks:
            skipped.append(f"{label}: no {precision} on this device")
            continue
        if time.perf_counter() + cost[compile] > until:  # priority order: the rest is listed as skipped
            skipped.append(f"{label}: time budget")
            continue
        t0 = time.perf_counter()
        try:
            results = throughput.compare(batch, device=device, precision=precision, channels_last=channels_last,
                                         compile=compile, rounds=plan.bench_rounds, steps=plan.bench_steps,
                                         scale=plan.scale, peak=ctx.peaks[precision]["tflops"], models=models)
        except (RuntimeError, torch.OutOfMemoryError) as error:  # out of memory, no compiler
            skipped.append(f"{label}: {str(error).splitlines()[0][:200]}")
            continue
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
        cost[compile] = max(cost[True], time.perf_counter() - t0) if compile else 1.5 * (time.perf_counter() - t0)
        for r in results:
            row = asdict(r)
            if precision == "fp32" and "fp32_non_tensor" in ctx.peaks:
                row["mfu_vs_fp32_non_tensor"] = throughput.mfu(r.images_per_s, r.gmac_per_image * 1e9,
                                                               ctx.peaks["fp32_non_tensor"]["tflops"])
            rows.append(row)
        ctx.say(f"bench {label}: " + ", ".join(f"{r.model} {r.images_per_s:,.0f} images/s" for r in results))
    summary = throughput.summarise(rows)
    paper_rows = [r for r in rows if r["model"] == "paper"]
    best_bf16 = max((r for r in paper_rows if r["precision"] == "bf16"), key=lambda r: r["images_per_s"],
                    default=None)
    return {"results": rows, "skipped": skipped, "best": summary["best"], "best_bf16": best_bf16,
            "paper_vs_torchvision_per_mac": summary["paper_vs_torchvision_per_mac"], "ratios": summary["ratios"],
            "reference": throughput.REFERENCE.get(plan.scale)}


def _best_uncompiled_batch(ctx: "Check") -> tuple[int, float | None]:
    bench = ctx.report["steps"].get("bench", {})
    rows = [r for r in bench.get("results", []) if r["model"] == "paper" and not r["compiled"]
            and r["precision"] == ctx.plan.precision]
    if not rows:
        return ctx.plan.e2e_batch, None
    best = max(rows, key=lambda r: r["images_per_s"])
    return best["batch_size"], best["images_per_s"]


def step_end_to_end(ctx: "Check", until: float) -> dict:
    """(b) train() with the set on the device: a synthetic ImageNet-like set, CIFAR-10 at 224; then the same with
    the host input path (data_on_device=False) and compiled, while time lasts."""
    from .data import ImageArrays

    plan, device = ctx.plan, ctx.device
    batch, compute_rate = _best_uncompiled_batch(ctx)
    runs, skipped, notes = [], [], {}
    t0 = time.perf_counter()
    synthetic = synthetic_imagenet(plan, device)
    notes["synthetic_made_s"] = round(time.perf_counter() - t0, 2)
    cap = len(synthetic.train) // batch - 1  # within one epoch: no validation or checkpoint inside the timing

    def run(splits, name, steps=None, **kw):
        steps = steps or steps_for(kw.pop("seconds", plan.e2e_seconds), kw.pop("rate", compute_rate), batch, plan,
                                   min(cap, len(splits.train) // batch - 1))
        row = timed_train(ctx, splits, name, model_scale=plan.scale, batch=batch, steps=steps, **kw)
        runs.append(row)
        ctx.say(f"end to end {name}: {row['images_per_s'] or float('nan'):,.0f} images/s ({row['steps']} steps, "
                f"batch {batch})")
        return row

    first = run(synthetic, "imagenet-like")
    measured = first["images_per_s"]
    try:
        cifar = cifar_splits(ctx)
        notes.update(cifar_cache_s=round(cifar["cache_s"], 2), cifar_resize_s=round(cifar["full_resize_s"], 2),
                     cifar_source=cifar["where"])
        label = f"cifar10-{cifar['full'].crop}"
        if time.perf_counter() + 2 * plan.e2e_seconds < until:
            run(cifar["full"], label, rate=measured)
        else:
            skipped.append(f"{label}: time budget")
    except (FileNotFoundError, ValueError) as error:
        skipped.append(f"cifar10: {error}")
    if plan.e2e_compile and time.perf_counter() + 90 + plan.e2e_seconds < until:
        run(synthetic, "imagenet-like-compiled", compile=True, rate=measured)
    elif plan.e2e_compile:
        skipped.append("imagenet-like-compiled: time budget")
    if time.perf_counter() + plan.e2e_seconds / 2 + 5 < until:
        # for comparison, the host input path (data_on_device=False: crops cut on the CPU, floats sent each step)
        # for a few steps, from a share of the set copied to host memory
        steps = max(plan.min_steps // 4, 4)
        n = min(len(synthetic.train), batch * (steps + 2))
        host = replace(synthetic, train=ImageArrays(synthetic.train.images[:n].cpu(), synthetic.train.labels[:n]),
                       val=ImageArrays(synthetic.val.images.cpu(), synthetic.val.labels))
        run(host, "imagenet-like-host-path", steps=steps, data_on_device=False)
        del host
    else:
        skipped.append("imagenet-like-host-path: time budget")
    del synthetic
    if device.type == "cuda":
        torch.cuda.empty_cache()
    resident = [r for r in runs if r["data_on_device"] and r["images_per_s"]]
    best = max(resident, key=lambda r: r["images_per_s"], default=None)
    return {"runs": runs, "skipped": skipped, "best": best, "batch_size": batch,
            "compute_only_images_per_s": compute_rate, **notes}


def step_scaled(ctx: "Check", until: float) -> dict:
    """(c) the 32 px network (the ablations' CPU track) on CIFAR-10 at the recipe's batch: images/s on the card,
    and what the CPU's ablation studies cost there."""
    plan = ctx.plan
    cifar = cifar_splits(ctx)["scaled"]
    batch = plan.scaled_batch
    seconds = max(1.0, min(plan.scaled_seconds, until - time.perf_counter() - 5))
    if plan.dry:
        seconds = 0.0  # the fewest steps
    probe = timed_train(ctx, cifar, "cifar10-scaled-probe", model_scale="scaled", batch=batch,
                        steps=plan.min_steps)
    steps = steps_for(seconds, probe["images_per_s"], batch, plan, len(cifar.train) // batch - 1)
    row = timed_train(ctx, cifar, "cifar10-scaled", model_scale="scaled", batch=batch, steps=steps)
    rate = row["images_per_s"]
    ctx.say(f"scaled network on CIFAR-10: {rate or float('nan'):,.0f} images/s (batch {batch})")
    cpu_images = CPU_STUDY_HOURS * 3600 * CPU_ABLATION_IMAGES_PER_S
    return {"run": row, "images_per_s": rate, "cpu_images_per_s": CPU_ABLATION_IMAGES_PER_S,
            "speedup_vs_cpu": rate / CPU_ABLATION_IMAGES_PER_S if rate else None,
            "cpu_study_hours": CPU_STUDY_HOURS, "cpu_study_training_images": cpu_images,
            "cpu_study_minutes_on_card": cpu_images / rate / 60 if rate else None,
            "quick_table_training_images": QUICK_TABLE_IMAGES,
            "quick_table_minutes_on_card": QUICK_TABLE_IMAGES / rate / 60 if rate else None,
            "assumption": "training steps only, one run at a time at batch 128 (validation, 10-crop evaluation "
                          "and start-up not counted); CPU rate ≈1,300 images/s from docs/ablations.md"}


def step_two_tower(ctx: "Check", until: float) -> dict:
    """(d) the full-size two-tower network on CIFAR-10 at 224 for the time left: conv1 (Fig. 3), specialisation."""
    from .figures import plot_conv1_filters
    from .towers import SpecialisationTracker, tower_specialisation

    plan = ctx.plan
    cifar = cifar_splits(ctx)["full"]
    batch = plan.towers_batch
    e2e = ctx.report["steps"].get("end_to_end", {})
    rates = [r["images_per_s"] for r in e2e.get("runs", []) if r.get("data") == "cifar10" and r["images_per_s"]]
    rate = rates[0] if rates else (e2e.get("best") or {}).get("images_per_s")
    reserve = 20  # the final 10-crop evaluation, the figure, writing
    seconds = until - time.perf_counter() - reserve
    if seconds < 30:
        raise TimeoutError(f"only {seconds:.0f} s left for training")
    steps_per_epoch = len(cifar.train) // batch
    # 20 % for start-up and the per-epoch validations; a dry run (no clock): two chunks of the fewest steps
    planned = 3 * plan.min_steps if plan.dry else steps_for(seconds * 0.8, rate, batch, plan)
    epochs = max(1, round(planned / steps_per_epoch))  # the linear schedule decays over these epochs (§5: plateaus)
    planned = min(planned, epochs * steps_per_epoch)
    tracker = SpecialisationTracker(n_permutations=2000)
    name, t0 = "cifar10-224-two-tower", time.perf_counter()
    recipe = dict(model_scale=plan.scale, batch=batch, epochs=epochs, callback=tracker, keep=True,
                  schedule="linear", warmup_epochs=min(0.5, epochs / 4), lr=0.04)
    # two calls of one run (max_steps is a budget; the second call continues the first exactly): the first
    # measures the real pace, the second takes the steps that the time left allows
    first = max(plan.min_steps, planned // 3)
    row = timed_train(ctx, cifar, name, steps=first, **recipe)
    row.pop("_result")
    per_step = (time.perf_counter() - t0) / max(row["steps"], 1)
    left = until - time.perf_counter() - reserve
    more = plan.min_steps if plan.dry else max(0, int(left / per_step))
    total = min(epochs * steps_per_epoch, row["steps"] + more)
    row = timed_train(ctx, cifar, name, steps=max(total, row["steps"]), ten_crop=True, **recipe)
    result = row.pop("_result")
    shutil.rmtree(ctx.work / "runs" / name, ignore_errors=True)
    spec = tower_specialisation(result.model, n_permutations=10_000)
    fig = plot_conv1_filters(result.model, title=f"conv1 after {row['steps']} steps of CIFAR-10 at "
                                                 f"{cifar.crop} px on {ctx.card}")
    figure = ctx.out / f"gpu_check_{ctx.slug}_conv1.png"
    fig.savefig(figure, dpi=110)
    ctx.say(f"two towers: {row['steps']} steps in {time.perf_counter() - t0:.0f} s; {spec}")
    m = result.metrics
    return {"run": row, "epochs": m.get("epochs"), "val_top1_error": m.get("val_top1_error"),
            "val_top5_error": m.get("val_top5_error"), "val_top1_error_10crop": m.get("val_top1_error_10crop"),
            "specialisation": spec.as_row(), "specialisation_text": str(spec), "per_epoch": tracker.rows,
            "figure": figure.name}


STEP_FUNCTIONS = {"bench": step_bench, "end_to_end": step_end_to_end, "scaled": step_scaled,
                  "two_tower": step_two_tower}


# ---------------------------------------------------------------------------------------------------------------
# Projections and targets


def hours_for_epochs(images_per_s: float | None, cards: int = 1, epochs: int = EPOCHS) -> float | None:
    """Hours for ``epochs`` passes over ILSVRC-2012's training set at ``images_per_s`` per card (linear in cards)."""
    if not images_per_s:
        return None
    return epochs * IMAGENET_TRAIN_IMAGES / (images_per_s * cards) / 3600


def projections(report: dict) -> dict:
    """90 ImageNet epochs from the measured rates, on one card and on eight, and the issue's targets."""
    steps = report["steps"]
    bench = steps.get("bench", {})
    e2e = steps.get("end_to_end", {})
    compute = (bench.get("best") or {}).get("images_per_s")
    end_to_end = (e2e.get("best") or {}).get("images_per_s")
    mfu = (bench.get("best_bf16") or {}).get("mfu")
    rows = []
    for label, rate in (("compute only (best training step, random batch)", compute),
                        ("end to end (train(), device-resident cache)", end_to_end)):
        rows.append({"basis": label, "images_per_s": rate, "hours_one_card": hours_for_epochs(rate),
                     "hours_eight_cards": hours_for_epochs(rate, 8)})
    hours = hours_for_epochs(end_to_end)
    dry = report.get("dry_run", False)

    def verdict(value, ok):
        return None if dry or value is None else bool(ok(value))

    targets = [
        {"target": "training step MFU, bf16, paper network", "goal": f"≥ {TARGETS['mfu_bf16']:.0%}",
         "measured": mfu, "met": verdict(mfu, lambda v: v >= TARGETS["mfu_bf16"])},
        {"target": "end to end images/s at 224 px from the device-resident cache",
         "goal": f"≥ {TARGETS['end_to_end_images_per_s']:,}", "measured": end_to_end,
         "met": verdict(end_to_end, lambda v: v >= TARGETS["end_to_end_images_per_s"])},
        {"target": f"{EPOCHS} ImageNet epochs on one card (end to end)",
         "goal": f"≤ {TARGETS['hours_90_epochs_one_card']:g} h", "measured": hours,
         "met": verdict(hours, lambda v: v <= TARGETS["hours_90_epochs_one_card"])},
    ]
    return {"epochs": EPOCHS, "imagenet_train_images": IMAGENET_TRAIN_IMAGES, "rows": rows, "targets": targets,
            "needed_images_per_s_for_2h": EPOCHS * IMAGENET_TRAIN_IMAGES / (2 * 3600),
            "assumptions": [
                "eight cards: eight times one card's rate (linear scaling assumed, not measured; gradient "
                "all-reduce of 61M parameters per step not counted)",
                "the end-to-end rate was measured on sets held whole on the card; ImageNet's 256 px cache "
                "(1.28M × 196,608 bytes = 252 GB) does not fit one card, so one card would use the prefetch path "
                "(host memory, next batch copied in the background) -- an 8-card run could hold 1/8 each (31 GB), "
                "which device_data.py does not do yet (each process holds the whole set)",
                "validation and checkpoints not counted"]}


# ---------------------------------------------------------------------------------------------------------------
# The Markdown section


def _n(value, fmt="{:,.0f}", missing="–"):
    return missing if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


def markdown(report: dict) -> str:
    steps = report["steps"]
    head = (f"## GPU check: {report['card']} ({report['date']}, torch {report['torch']}"
            f"{', CUDA ' + report['cuda'] if report.get('cuda') else ''})")
    lines = [head, ""]
    if report["dry_run"]:
        lines += ["**Dry run on a CPU at toy sizes: the plumbing, not measurements.**", ""]
    budget = "no time budget (dry run)" if report["dry_run"] else f"a {report['budget_s']:.0f} s budget"
    lines += [f"`bash scripts/gpu_check.sh` (`alexnet-book gpu-check`), {report['wall_s']:.0f} s of {budget}. "
              "Peak TFLOP/s for MFU: "
              + ", ".join(f"{k} {v['tflops']:,.4g} ({v['source']})" for k, v in report["peaks"].items()) + ".", ""]
    for name in STEPS:
        s = steps.get(name, {"status": "not run"})
        lines += [f"### {TITLES[name]}", ""]
        if s.get("status") != "ok":
            lines += [f"Status: **{s.get('status')}**" + (f" -- `{s['error']}`" if s.get("error") else ""), ""]
        if name == "bench" and s.get("results"):
            lines += ["| network | batch | precision | channels_last | compiled | images/s | TFLOP/s | MFU | "
                      "peak GiB |", "|---|---|---|---|---|---|---|---|---|"]
            for r in s["results"]:
                lines.append(f"| {r['model']} | {r['batch_size']} | {r['precision']} | {r['channels_last']} | "
                             f"{r['compiled']} | {_n(r['images_per_s'])} | {_n(r['tflops'], '{:.1f}')} | "
                             f"{_n(r['mfu'], '{:.1%}')} | {_n(r['peak_memory_gb'], '{:.1f}')} |")
            lines.append("")
            if s.get("paper_vs_torchvision_per_mac") is not None:
                lines += [f"Paper network vs torchvision's per MAC at the fastest paper setting: "
                          f"{s['paper_vs_torchvision_per_mac']:.3f}.", ""]
        if name == "end_to_end" and s.get("runs"):
            lines += ["| data | images | batch | compiled | data on device | steps | images/s |",
                      "|---|---|---|---|---|---|---|"]
            for r in s["runs"]:
                lines.append(f"| {r['name']} | {r['train_images']:,} | {r['batch_size']} | {r['compiled']} | "
                             f"{r['data_on_device']} | {r['steps']} | {_n(r['images_per_s'])} |")
            lines += ["", "Steady images/s: median over the metrics log's windows after the first (the loss is "
                      "read every step, as in any run). Sources: "
                      + "; ".join(sorted({f"{r['data']}: {r['source']}" for r in s["runs"]})) + ".", ""]
        if name == "scaled" and s.get("images_per_s"):
            lines += [f"{_n(s['images_per_s'])} images/s at batch {s['run']['batch_size']} "
                      f"({_n(s['speedup_vs_cpu'], '{:.0f}')}× the CPU's ≈{CPU_ABLATION_IMAGES_PER_S:,}). "
                      f"A {CPU_STUDY_HOURS:g}-hour CPU ablation study ({s['cpu_study_training_images']:,.0f} training "
                      f"images) takes {_n(s['cpu_study_minutes_on_card'], '{:.1f}')} min of training on this card; "
                      f"the quick table ({QUICK_TABLE_IMAGES:,} images, 21.6 min on the CPU) "
                      f"{_n(s['quick_table_minutes_on_card'], '{:.2f}')} min. Assumption: {s['assumption']}.", ""]
        if name == "two_tower" and s.get("run"):
            r = s["run"]
            lines += [f"{r['steps']} steps ({_n(s['epochs'], '{:g}')} epochs) at batch {r['batch_size']}, "
                      f"{_n(r['images_per_s'])} images/s, {r['wall_s']:.0f} s: top-1 validation error "
                      f"{_n(s['val_top1_error'], '{:.1%}')} ({_n(s['val_top1_error_10crop'], '{:.1%}')} with 10 "
                      f"crops). Specialisation (§6.1): {s['specialisation_text']}.", "",
                      f"![conv1 kernels after training]({s['figure']})", ""]
        for line in s.get("skipped", []):
            lines.append(f"- skipped: {line}")
        if s.get("skipped"):
            lines.append("")
    p = report.get("projections")
    if p and "rows" in p:
        lines += [f"### Projections: {EPOCHS} epochs of ImageNet ({IMAGENET_TRAIN_IMAGES:,} images)", "",
                  "| basis | images/s per card | one card | eight cards |", "|---|---|---|---|"]
        for r in p["rows"]:
            lines.append(f"| {r['basis']} | {_n(r['images_per_s'])} | {_n(r['hours_one_card'], '{:.2f} h')} | "
                         f"{_n(r['hours_eight_cards'], '{:.2f} h')} |")
        lines += ["", "| target | goal | measured | met |", "|---|---|---|---|"]
        for t in p["targets"]:
            value = t["measured"]
            shown = _n(value, "{:.1%}") if "MFU" in t["target"] else (
                _n(value, "{:.2f} h") if "epochs" in t["target"] else _n(value))
            met = {True: "yes", False: "**no**", None: "–"}[t["met"]]
            lines.append(f"| {t['target']} | {t['goal']} | {shown} | {met} |")
        lines += ["", "Assumptions: " + "; ".join(p["assumptions"]) + ".", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Running it


class Check:
    """One run's state: plan, device, where things go, the report so far, the clock."""

    def __init__(self, plan: Plan, out: Path, work: Path, budget_s: float, cifar_path: str | None,
                 quiet: bool = False):
        self.plan, self.out, self.work, self.cifar_path = plan, out, work, cifar_path
        self.start, self.budget_s = time.perf_counter(), budget_s
        self.deadline = self.start + budget_s
        self.device = torch.device(plan.device)
        self.card = card_name(self.device)
        self.slug = card_slug(self.card, self.device.type)
        self.cifar = None
        self.cache = work / "cache"
        self.quiet = quiet
        self.peaks: dict = {}
        self.report: dict = {}

    def say(self, text: str) -> None:
        if not self.quiet:
            print(f"[gpu-check {time.perf_counter() - self.start:6.1f}s] {text}", flush=True)

    @property
    def json_path(self) -> Path:
        return self.out / f"gpu_check_{self.slug}.json"

    @property
    def md_path(self) -> Path:
        return self.out / f"gpu_check_{self.slug}.md"

    def write(self) -> None:
        from .runs import atomic_write_text

        self.report["wall_s"] = time.perf_counter() - self.start
        try:
            self.report["projections"] = projections(self.report)
        except Exception as error:  # noqa: BLE001 -- the measurements are still written
            self.report["projections"] = {"error": f"{type(error).__name__}: {error}"}
        atomic_write_text(self.json_path, json.dumps(self.report, indent=1, default=_jsonable) + "\n")
        try:
            text = markdown(self.report)
        except Exception as error:  # noqa: BLE001
            text = (f"## GPU check: {self.card}\n\nThe section could not be written ({error!r}); "
                    f"see {self.json_path.name}.")
        atomic_write_text(self.md_path, text + "\n")

    def until(self, name: str) -> float:
        """The clock time by which step ``name`` should end: its cumulative share of the budget (a step that
        ends early leaves its time to the next), the last step everything but the reserve."""
        if self.plan.dry:  # the plumbing, all of it: no step is cut for time
            return math.inf
        end = self.deadline - self.plan.reserve_s
        share = self.plan.shares.get(name)
        return end if share is None else min(end, self.start + share * self.budget_s)


def _jsonable(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def run_check(*, dry_run: bool = False, out: str | Path | None = None, work: str | Path | None = None,
              budget_s: float | None = None, cifar: str | None = None, device: str = "cuda",
              quiet: bool = False) -> dict:
    """Run the check (see the module docstring); returns the report, also written to ``out``."""
    from . import data

    plan = Plan.for_dry_run() if dry_run else Plan.for_gpu(device)
    if not dry_run and not torch.device(device).type == "cuda":
        raise ValueError("the check is for a GPU (device cuda); use --dry-run to try it on a CPU")
    if not dry_run and not torch.cuda.is_available():
        raise RuntimeError("no CUDA device here; use --dry-run to try the check on a CPU")
    root = data.project_root()
    out = Path(out) if out else (root / "runs" / "gpu_check_dry" if dry_run else root / "results")
    out.mkdir(parents=True, exist_ok=True)
    scratch = None
    if work is None:  # run folders (checkpoints every epoch: memory is faster than disk) and, dry, the cache
        shm = Path("/dev/shm")
        scratch = Path(tempfile.mkdtemp(prefix="alexnet-gpu-check-",
                                        dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None))
        work = scratch
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    ctx = Check(plan, out, work, budget_s or (120.0 if dry_run else DEFAULT_BUDGET_S), cifar, quiet)
    ctx.cache = work / "cache" if dry_run else root / ".gpu" / "cache"  # CIFAR-10 decoded once at 32 px
    cuda = torch.version.cuda if ctx.device.type == "cuda" else None
    ctx.report = {"card": ctx.card, "card_slug": ctx.slug, "device": str(ctx.device), "dry_run": dry_run,
                  "date": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__, "cuda": cuda,
                  "budget_s": ctx.budget_s, "plan": asdict(plan), "peaks": {}, "steps": {}, "errors": []}
    previous = signal.getsignal(signal.SIGTERM)
    threads = torch.get_num_threads()
    if dry_run:
        torch.set_num_threads(1)  # toy sizes: one thread does them fastest, and leaves a shared CI machine alone

    def stop(signum, frame):  # a `timeout` that runs out: record what was done
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread
        previous = None
    ctx.say(f"{ctx.card}: {'dry run, CPU, toy sizes' if dry_run else 'GPU check'}; budget {ctx.budget_s:.0f} s; "
            f"writing {ctx.json_path}")
    try:
        ctx.peaks = peaks(ctx.device, plan)
        ctx.report["peaks"] = ctx.peaks
        for name in STEPS:
            entry = ctx.report["steps"][name] = {"status": "running"}
            t0 = time.perf_counter()
            try:
                entry.update(STEP_FUNCTIONS[name](ctx, ctx.until(name)))
                entry["status"] = "ok"
            except Exception as error:  # noqa: BLE001 -- recorded; the next step still runs
                entry.update(status="failed", error=f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
                             if str(error) else type(error).__name__,
                             traceback=traceback.format_exc(limit=6)[-3000:])
                ctx.report["errors"].append(f"{name}: {entry['error']}")
                ctx.say(f"{name} failed: {entry['error']}")
            finally:
                entry["seconds"] = round(time.perf_counter() - t0, 2)
                if ctx.device.type == "cuda":
                    torch.cuda.empty_cache()
                ctx.write()
    except KeyboardInterrupt as stopped:
        ctx.report["errors"].append(f"interrupted: {stopped}")
        for entry in ctx.report["steps"].values():
            if entry.get("status") == "running":
                entry["status"] = "interrupted"
        ctx.write()
        raise
    finally:
        torch.set_num_threads(threads)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        ctx.cifar = None
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    ctx.say(f"done in {ctx.report['wall_s']:.0f} s: {ctx.json_path}, {ctx.md_path}")
    return ctx.report


def cli_main(argv: list[str]) -> int:
    """``alexnet-book gpu-check``: the GPU check (a)-(d) and projections, written as JSON and Markdown."""
    parser = argparse.ArgumentParser(
        prog="alexnet-book gpu-check", description=__doc__.split("\n\n")[0] + " See docs/benchmarks.md.",
        epilog="usually run through `bash scripts/gpu_check.sh` (installs the package, then runs this)")
    parser.add_argument("--dry-run", action="store_true",
                        help="every step on the CPU at toy sizes (seconds; checks the plumbing, measures nothing)")
    parser.add_argument("--out", default=None, help="folder for gpu_check_<card>.json/.md and the figure "
                        "(default results/; with --dry-run runs/gpu_check_dry/)")
    parser.add_argument("--work", default=None, help="scratch folder for the runs (default a temporary folder, "
                        "in /dev/shm where there is one; removed at the end); the CIFAR-10 cache goes to .gpu/cache/")
    parser.add_argument("--budget", type=float, default=None, help="seconds for the whole check (default 400; "
                        "dry run 120)")
    parser.add_argument("--cifar", default=None, help="the CIFAR-10 archive (default .gpu/cifar10-jpg.tar.gz, "
                        "then the book's usual places)")
    parser.add_argument("--device", default="cuda", help="the GPU (default cuda)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    try:
        report = run_check(dry_run=args.dry_run, out=args.out, work=args.work, budget_s=args.budget,
                           cifar=args.cifar, device=args.device, quiet=args.quiet)
    except (ValueError, RuntimeError) as error:
        print(f"alexnet-book gpu-check: {error}", file=sys.stderr)
        return 2
    return 0 if not report["errors"] else 1


if __name__ == "__main__":
    sys.exit(cli_main(sys.argv[1:]))
