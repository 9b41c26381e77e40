"""Data sets and formats, and the paper's preprocessing into a uint8 cache (§2).

§2: "ImageNet consists of variable-resolution images ... we down-sampled the images to a fixed resolution of
256 × 256. Given a rectangular image, we first rescaled the image such that the shorter side was of length 256,
and then cropped out the central 256×256 patch from the resulting image. We did not pre-process the images in
any other way, except for subtracting the mean activity over the training set from each pixel."

One entry point, ``load_dataset(name, root)``, returns the train and validation splits as uint8 arrays of the
stored ``S×S`` images (S = 256 on the full track, 36 on the scaled CIFAR track), the per-pixel mean image and
the PCA of the RGB pixels over the training set (§4.1).  Every image is decoded once, in parallel worker
processes, into a memory-mapped ``.npy`` under ``data/cache/<key>/``; the build shows a progress bar, resumes
where it stopped, and only a finished build is ever renamed into place, so a half-written cache is never used.
Crops, flips, PCA colour noise and mean subtraction then run on whole uint8 batches (``augment.py``).

The scaled track.  CIFAR-10 images are 32×32; the book stores them at 36×36 (bilinear upsampling) and crops 32,
the analogue of the paper's 256 → 224 (36/32 ≈ 256/224).

Formats read: ImageFolder trees (``train/<class>/…``, ``val/<class>/…`` or ``test/<class>/…``) as folders or
tar(.gz) archives; torchvision's ``cifar-10-batches-py``; the official ILSVRC-2012 archives (a train tar of
per-class tars, a flat val tar and the devkit's ground truth) or their extracted folders; fast.ai's Imagenette
and Imagewoof archives; ImageNet subsets as manifests; and a deterministic synthetic set for tests.

The package, one module per part: ``types`` (ImageList, Source, ImageArrays, DataSplits), ``listing`` (folders
and tar archives), ``cifar``, ``synthetic``, ``imagenet``, ``subsets``, ``fastai`` (Imagenette, Imagewoof),
``decode`` (one image, and the worker pool), ``cache`` (the memory-mapped cache, mean image and PCA),
``jpeg_dataset`` and ``summary``.  This module holds the entry point -- ``load_dataset``, ``open_source`` and the
registry of data sets by name (``SOURCES``) -- and re-exports the public names of the others, so
``data.load_dataset``, ``data.build_cache`` and the rest are used as before.
"""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

from ..files import data_dir
from .cache import (CACHE_VERSION, CHUNK, DISK_MARGIN, FULL_DIGEST_BYTES, _cache_key, _report, archive_digest,
                    build_cache, cache_content_digest, cache_folder, load_cache, mean_and_pca)
from .cifar import (CIFAR10_CLASSES, CIFAR10_URL, download_cifar10, find_cifar10, open_cifar10, read_cifar_batch,
                    scan_cifar_batches)
from .decode import DECODER, decode_image
from .fastai import FASTAI_MD5, FASTAI_SHA256, FASTAI_SIZES, FASTAI_URL, extract_tar, open_fastai
from .imagenet import DEVKIT, TRAIN_TAR, VAL_TAR, WNID, Devkit, open_imagenet, read_class_list, read_devkit
from .jpeg_dataset import JpegDataset
from .listing import LISTING_BAR_AFTER, _listing_progress, open_imagefolder, scan_folder, scan_tar
from .subsets import make_subset, open_subset
from .summary import cache_status, class_counts, describe
from .synthetic import make_synthetic, open_synthetic
from .types import FULL_BY_DEFAULT, HOW_TO_GET_DATA, IMAGE_SUFFIXES, SCALES, DataSplits, ImageArrays, ImageList, Source

__all__ = [
    # the entry point
    "load_dataset", "open_source", "SOURCES", "ALIASES", "source_key", "sized_source", "limit_images",
    "data_identity", "dataset_identity", "same_data",
    # types and tracks
    "ImageList", "Source", "ImageArrays", "DataSplits", "SCALES", "IMAGE_SUFFIXES", "FULL_BY_DEFAULT",
    "HOW_TO_GET_DATA",
    # formats and data sets
    "scan_folder", "scan_tar", "open_imagefolder", "LISTING_BAR_AFTER",
    "CIFAR10_CLASSES", "CIFAR10_URL", "find_cifar10", "read_cifar_batch", "scan_cifar_batches", "open_cifar10",
    "download_cifar10", "make_synthetic", "open_synthetic",
    "TRAIN_TAR", "VAL_TAR", "DEVKIT", "WNID", "Devkit", "read_class_list", "read_devkit", "open_imagenet",
    "make_subset", "open_subset", "FASTAI_URL", "FASTAI_SIZES", "FASTAI_MD5", "FASTAI_SHA256", "extract_tar",
    "open_fastai",
    # decoding and the cache
    "DECODER", "decode_image", "JpegDataset", "CACHE_VERSION", "CHUNK", "DISK_MARGIN", "FULL_DIGEST_BYTES",
    "archive_digest", "cache_content_digest", "cache_folder", "build_cache", "load_cache", "mean_and_pca",
    # summaries
    "describe", "class_counts", "cache_status",
]


# ---------------------------------------------------------------------------------------------------------------
# The entry point


def limit_images(images: ImageList, limit: int | None, num_classes: int) -> ImageList:
    """At most ``limit`` images, balanced over classes (the first ones of each class in sorted order)."""
    if limit is None or limit >= len(images):
        return images
    per_class = [limit // num_classes + (1 if c < limit % num_classes else 0) for c in range(num_classes)]
    keep = []
    for i, label in enumerate(images.labels):
        if per_class[label] > 0:
            per_class[label] -= 1
            keep.append(i)
    return ImageList([images.keys[i] for i in keep], [images.labels[i] for i in keep], images.storage, images.archive)


def _banner(text: str) -> None:
    line = "!" * 100
    print(f"\n{line}\n!! {text}\n{line}\n", file=sys.stderr, flush=True)
    warnings.warn(text, stacklevel=3)


def _open_auto(root: str | Path | None) -> Source:
    """CIFAR-10 at ``root``, else found locally, else downloaded, else (loudly) the synthetic set."""
    if root is not None:
        return open_cifar10(root)
    local = find_cifar10()
    if local is not None:
        return open_cifar10(local)
    downloaded = download_cifar10(data_dir())
    if downloaded is not None:
        return open_cifar10(downloaded)
    _banner(f"NO REAL DATA FOUND -- training on the SYNTHETIC set instead. To use CIFAR-10: {HOW_TO_GET_DATA}")
    return open_synthetic()


def _open_folder(root: str | Path | None) -> Source:
    if root is None:
        raise ValueError("data set 'folder' needs root= the folder holding train/ and val/")
    return open_imagefolder(Path(root).name, root)


# The data sets by name: name -> opener(root) returning the Source, not yet decoded (root None: the usual places,
# data/README.md).  "auto" comes first; another data set is added here, and ``open_source``, ``load_dataset`` and
# the `alexnet-book data` command's --data choices know it.
SOURCES = {
    "auto": _open_auto,
    "cifar10": lambda root: open_cifar10(root, download=root is None),
    "synthetic": open_synthetic,
    "folder": _open_folder,
    "imagenet": open_imagenet,
    "imagenet-subset": lambda root: open_subset(root if root is not None else data_dir() / "subsets" / "default.json"),
    "imagenette": lambda root: open_fastai("imagenette", root),
    "imagewoof": lambda root: open_fastai("imagewoof", root),
}
ALIASES = {"cifar-10": "cifar10", "imagefolder": "folder"}  # other spellings accepted for a name


def source_key(name: str) -> str:
    """The registry's name for ``name``: lower case, "_" as "-", aliases resolved (unknown names unchanged)."""
    key = name.lower().replace("_", "-")
    return ALIASES.get(key, key)


def open_source(name: str = "auto", root: str | Path | None = None) -> Source:
    """Locate a data set by name (without decoding): cifar10, synthetic, imagenet, imagenet-subset, imagenette,
    imagewoof, folder; "auto" = CIFAR-10 found locally, else downloaded, else (loudly) the synthetic set."""
    opener = SOURCES.get(source_key(name))
    if opener is None:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(SOURCES)}")
    return opener(root)


def load_dataset(name: str = "auto", root: str | Path | None = None, *, scale: str | None = None,
                 limit: int | None = None, progress: bool = True) -> DataSplits:
    """Load a data set by name as uint8 train/val arrays, class names, mean image and PCA (§2, §4.1).

    name "auto": CIFAR-10 found locally (env ALEXNET_BOOK_CIFAR10, ../shared/data/cifar10-jpg.tar.gz from the
    project root, data/ folder), else torchvision download when online, else (loudly) the synthetic set.
    scale: "scaled" (store 36, crop 32), "full" (store 256, crop 224) or "native" (store 32, crop 32: CIFAR-10's
    own pixels, no resampling); default "scaled" for cifar10/synthetic,
    "full" for ImageNet-like sets. limit: at most this many images per split (balanced over classes; for smoke
    modes and tests). Decodes once into the cache under data/cache/ (atomic, resumable, progress bar) and
    memory-maps it afterwards.
    """
    with _listing_progress(progress):
        source, size, crop = _located(name, root, scale, limit)
    folder = build_cache(source, size, progress=progress)
    splits = load_cache(folder, crop)
    meta = json.loads((folder / "meta.json").read_text())
    _report(meta, str(folder))
    return splits


def _located(name, root, scale, limit) -> tuple[Source, int, int]:
    """The Source ``load_dataset`` decodes (limited to ``limit`` images per split), its stored and crop sides."""
    return sized_source(open_source(name, root), scale, limit)


def sized_source(source: Source, scale: str | None, limit: int | None) -> tuple[Source, int, int]:
    """``source`` limited to ``limit`` images per split (in place), with the stored and crop sides of ``scale``."""
    if scale is None:
        scale = "full" if source.name in FULL_BY_DEFAULT else "scaled"
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, not {scale!r}")
    size, crop = SCALES[scale]
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be a positive number of images per split, not {limit!r}")
        source.train = limit_images(source.train, limit, len(source.classes))
        source.val = limit_images(source.val, limit, len(source.classes))
    return source, size, crop


def data_identity(splits: DataSplits) -> dict:
    """Which data a run trained on, for the results store and checkpoints: ``source`` (where the set came from)
    and ``cache_key`` (the name of its cache: a fingerprint of the listing, labels, archives and stored size, and of
    each extracted image file's size and modification time)."""
    return {"source": splits.source, "cache_key": Path(splits.cache).name if splits.cache else ""}


def dataset_identity(name: str = "auto", root: str | Path | None = None, *, scale: str | None = None,
                     limit: int | None = None) -> dict:
    """``data_identity`` of what ``load_dataset(name, root, scale=, limit=)`` would open, from the listing alone
    (nothing is decoded): how a finished run is checked against the data found now, before it is reused."""
    source, size, _ = _located(name, root, scale, limit)
    return {"source": source.description, "cache_key": _cache_key(source, size)}


def same_data(recorded: dict | None, current: dict) -> bool:
    """Whether a recorded data identity matches the current one (a record without one matches anything)."""
    if not recorded:
        return True
    if recorded.get("cache_key") and current.get("cache_key"):
        if recorded["cache_key"] == current["cache_key"]:
            return True
        # keys made differently (an older key that hashed the archive's modification time) or of another copy:
        # the same data when both caches are on disk and hold the same decoded pixels and labels
        caches = data_dir() / "cache"
        old, new = (cache_content_digest(caches / key) for key in (recorded["cache_key"], current["cache_key"]))
        return old is not None and old == new
    return recorded.get("source") == current.get("source")
