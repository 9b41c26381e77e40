"""The synthetic set: a deterministic ImageFolder of JPEGs (class = colour + stripe angle) for tests and offline
demos."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from ..files import data_dir
from .listing import open_imagefolder
from .types import Source

def make_synthetic(root: str | Path | None = None, *, classes: int = 10, train_per_class: int = 60,
                   val_per_class: int = 12, size: tuple[int, int] = (48, 40), seed: int = 0) -> Path:
    """Write a deterministic ImageFolder set of JPEGs (class = colour + stripe angle) for tests and offline demos."""
    root = Path(root) if root is not None else data_dir() / f"synthetic-{classes}x{train_per_class}-{seed}"
    if (root / "train").is_dir() and (root / "val").is_dir():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=root.name + ".", dir=root.parent))
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for split, per_class in (("train", train_per_class), ("val", val_per_class)):
        for c in range(classes):
            angle = np.pi * c / classes
            hue = 2 * np.pi * c / classes
            colour = 127.5 + 100 * np.cos(hue + np.array([0.0, 2.094, 4.189], dtype=np.float32))
            folder = tmp / split / f"class{c:02d}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                rng = np.random.default_rng([seed, c, i, split == "val"])
                phase = rng.uniform(0, 2 * np.pi)
                wave = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) / 3.0 + phase)
                img = colour + 60 * wave[..., None] + rng.normal(0, 12, (h, w, 3))
                Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(folder / f"{i:04d}.jpg", quality=90)
    try:
        os.replace(tmp, root)
    except OSError:  # another process made it first
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def open_synthetic(root: str | Path | None = None) -> Source:
    """The synthetic set (generated on first use) as a Source."""
    src = open_imagefolder("synthetic", make_synthetic(root) if root is None else root)
    src.description = "synthetic " + src.description.split(" ", 1)[1]
    return src
