"""The check's data, made or resized on the device: an ImageNet-shaped synthetic set and CIFAR-10 resized to
both tracks."""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .plan import Plan

if TYPE_CHECKING:
    from .context import Check


# ---------------------------------------------------------------------------------------------------------------
# Data for the checks: made or resized on the device


def resize_on_device(images: torch.Tensor, size: int, device: torch.device, chunk: int = 2048) -> torch.Tensor:
    """uint8 (N, s, s, 3) → (N, size, size, 3) on ``device``: bilinear, antialiased (§2's rescale, as the cache
    builder's ``data.decode._centre_square_resize`` does on square images, within a grey level of it)."""
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
    from ..data import DataSplits, ImageArrays, SCALES
    from ..device_data import mean_and_pca

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
    from .. import data, files

    if explicit:
        return Path(explicit)
    gpu_dir = files.project_root() / ".gpu"
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
    from .. import data
    from ..device_data import mean_and_pca

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
