"""Summaries of a data set: one row per split, images per class, and whether its cache is built."""
from __future__ import annotations

from pathlib import Path

import torch

from .cache import cache_folder
from .types import DataSplits, Source

def describe(splits: DataSplits) -> "pandas.DataFrame":
    """One row per split: images, classes, stored side, crop side, cache size (for notebooks and `data info`)."""
    import pandas as pd

    rows = []
    for split in ("train", "val"):
        arrays = getattr(splits, split)
        rows.append({"data set": splits.name, "split": split, "images": len(arrays), "classes": len(splits.classes),
                     "stored": f"{splits.size}×{splits.size}", "crop": f"{splits.crop}×{splits.crop}",
                     "MB": round(arrays.images.numel() / 2**20, 1),
                     "images per class (min-max)": "{}-{}".format(*_count_range(arrays.labels, len(splits.classes)))})
    return pd.DataFrame(rows)


def _count_range(labels: torch.Tensor, n: int) -> tuple[int, int]:
    counts = torch.bincount(labels, minlength=n)
    return int(counts.min()), int(counts.max())


def class_counts(splits: DataSplits | Source) -> "pandas.DataFrame":
    """Images per class in each split, with the human-readable names: of the decoded arrays (DataSplits) or of
    the listing before decoding (Source: what a cache would hold, less any undecodable file)."""
    import pandas as pd

    n = len(splits.classes)

    def counts(labels) -> list[int]:
        return torch.bincount(torch.as_tensor(labels, dtype=torch.int64), minlength=n).tolist()

    return pd.DataFrame({"class": splits.classes, "name": splits.class_names,
                         "train": counts(splits.train.labels), "val": counts(splits.val.labels)})


def cache_status(source: Source, size: int, cache_root: str | Path | None = None) -> tuple[str, Path]:
    """Whether the cache of ``source`` at ``size`` px exists, without decoding: ("built" | "partial" | "missing",
    its folder).  "partial": a build stopped part-way (``build_cache`` resumes it)."""
    folder = cache_folder(source, size, cache_root)
    if (folder / "complete.json").exists():
        return "built", folder
    if (folder.parent / (folder.name + ".partial")).is_dir():
        return "partial", folder
    return "missing", folder
