"""Benchmarks: `alexnet-book bench data` -- how fast the §2/§4.1 input pipeline feeds the network.

PAPER.md §7: JPEG decoding runs at ≈400-650 images/s per core at best, while one modern GPU trains AlexNet at
thousands of images/s, so the input pipeline decides whether the GPU waits.  ``bench data`` measures images/s on
ONE core (one process, one torch thread) for three pipelines on generated ImageNet-sized JPEGs (~500×375):

- reference: torchvision's ImageNet recipe, ImageFolder + RandomResizedCrop(224) + RandomHorizontalFlip +
  ToTensor + Normalize, through a DataLoader;
- paper, from JPEG: ``data.JpegDataset`` (libjpeg-turbo through simplejpeg with its fast DCT, one antialiased
  resize of the central square to 256 with torch's uint8 kernel) batched into ``augment.train_batch`` (random 224
  crops, flips, PCA colour noise, mean subtraction);
- paper, from the cache: the same batches read from the memory-mapped uint8 cache (decoded once).

``bench data --folder DIR`` measures the same three on the reader's own images instead: an ImageFolder root
(``DIR/train/<class>/…``), one split's ``<class>/`` folders, or a folder of images.  DIR is only read: the cache
and every other scratch file go to a temporary folder outside it.

More cores scale each pipeline about linearly (DataLoader workers, or the cache needing almost none).
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import augment, data
from .data.listing import _is_image_name
from .files import machine


def make_jpegs(folder: str | Path, n: int, *, classes: int = 4, seed: int = 0, quality: int = 90) -> Path:
    """Write ``n`` ImageNet-sized JPEGs (500×375, 500×333, 375×500; textured, ~100 kB) as an ImageFolder train/."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    shapes = [(375, 500), (333, 500), (500, 375)]
    for i in range(n):
        h, w = shapes[i % len(shapes)]
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        f = rng.uniform(10, 60, 3)
        img = np.stack([128 + 90 * np.sin(x / f[c] + c) * np.cos(y / f[(c + 1) % 3] - c) for c in range(3)], -1)
        img += rng.normal(0, 18, (h, w, 3))
        out = folder / "train" / f"class{i % classes}" / f"{i:05d}.JPEG"
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(out, quality=quality)
    return folder


def _rate(step, seconds: float) -> float:
    """Images per CPU-second of ``step()`` (which returns how many images it made), after one warm-up call.

    CPU time of this process (one process, one torch thread: one core) rather than wall time, so that other
    work on a shared machine does not count against the pipeline; on an idle machine the two agree.
    """
    step()
    done, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        done += step()
    return done / max(time.process_time() - c0, 1e-9)


def _forever(loader):
    while True:
        yield from loader


class _Listed(torch.utils.data.Dataset):
    """ImageFolder's reading (torchvision's default loader, then the transform) over an already listed split."""

    def __init__(self, images: data.ImageList, transform):
        from torchvision.datasets.folder import default_loader

        self.images, self.transform, self.loader = images, transform, default_loader

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.transform(self.loader(self.images.keys[i])), self.images.labels[i]


def reference_rate(folder: Path | data.ImageList, seconds: float, batch_size: int = 32) -> float:
    """torchvision's ImageNet training input: ImageFolder + RandomResizedCrop + flip + ToTensor + Normalize.

    ``folder``: an ImageFolder root (its ``train/`` is read), or the listing of the images to read.
    """
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor(),
                             transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    dataset = _Listed(folder, tf) if isinstance(folder, data.ImageList) else datasets.ImageFolder(
        str(folder / "train"), tf)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=0)
    batches = _forever(loader)

    def step():
        x, _ = next(batches)
        return x.shape[0]

    return _rate(step, seconds)


def jpeg_rate(folder: Path | data.ImageList, mean_image: torch.Tensor, pca, seconds: float,
              batch_size: int = 32) -> float:
    """The paper's pipeline from JPEG files: JpegDataset (§2 rescale + centre crop) + train_batch (§4.1).

    ``folder``: an ImageFolder root (its ``train/`` is read), or the listing of the images to read.
    """
    listing = folder if isinstance(folder, data.ImageList) else data.scan_folder(folder / "train")[0]
    loader = torch.utils.data.DataLoader(data.JpegDataset(listing, mean_image.shape[0]), batch_size=batch_size,
                                         shuffle=True, num_workers=0)
    batches = _forever(loader)
    gen = torch.Generator().manual_seed(0)

    def step():
        images, _ = next(batches)
        x = augment.train_batch(images, mean_image, 224, pca=pca, generator=gen)
        return x.shape[0]

    return _rate(step, seconds)


def cache_rate(splits: data.DataSplits, seconds: float, batch_size: int = 128) -> float:
    """The paper's pipeline from the uint8 cache: random batches → train_batch (§4.1)."""
    gen = torch.Generator().manual_seed(0)
    images, n = splits.train.images, len(splits.train)
    pca = (splits.pca_eigvals, splits.pca_eigvecs)

    def step():
        idx = torch.randint(0, n, (batch_size,), generator=gen).sort().values
        x = augment.train_batch(images, splits.mean_image, splits.crop, pca=pca, generator=gen, index=idx)
        return x.shape[0]

    return _rate(step, seconds)


def list_images(folder: str | Path, images: int | None = None) -> tuple[data.ImageList, list[str]]:
    """The images of a reader's folder, without writing anything: ``DIR/train/<class>/…`` when there is a
    ``train/``, else ``DIR/<class>/…`` with images directly in DIR as one more class.  At most ``images`` of them,
    balanced over classes (the first of each in sorted order)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder; pass a folder of JPEGs (an ImageFolder root with "
                                "train/<class>/, a split's <class>/ folders, or the images themselves)")
    top = folder / "train" if (folder / "train").is_dir() else folder
    entries, seen = [], set()
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink loop
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        parts = Path(dirpath).relative_to(top).parts
        cls = parts[0] if parts else "."
        entries += [(cls, os.path.join(dirpath, f)) for f in sorted(filenames)
                    if _is_image_name(f) and not f.startswith(".")]
    if not entries:
        raise ValueError(f"{top}: no images ({', '.join(data.IMAGE_SUFFIXES)}) in it or its subfolders; pass a "
                         "folder of JPEGs")
    classes = sorted({c for c, _ in entries})
    index = {c: i for i, c in enumerate(classes)}
    entries.sort(key=lambda e: (index[e[0]], e[1]))
    listing = data.ImageList([k for _, k in entries], [index[c] for c, _ in entries], "files")
    return data.limit_images(listing, images, len(classes)), classes


def _inside(path: Path, folder: Path) -> bool:
    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path == folder or folder in path.parents


def _typical_size(listing: data.ImageList, sample: int = 50) -> str:
    """The median width×height of up to ``sample`` of the images, from their headers."""
    sizes = []
    for key in listing.keys[:: max(1, len(listing) // sample)][:sample]:
        try:
            with Image.open(key) as img:
                sizes.append(img.size)
        except (OSError, ValueError):
            continue
    if not sizes:
        return "?"
    w, h = np.median(np.array(sizes), axis=0)
    return f"{w:.0f}×{h:.0f}"


def bench_data(quick: bool = True, *, images: int | None = None, seconds: float | None = None,
               folder: str | Path | None = None, progress: bool = False,
               jpegs: str | Path | None = None) -> dict:
    """Images/s per core of the reference, paper-from-JPEG and paper-from-cache pipelines (one run).

    ``jpegs``: the reader's own folder of images (see ``list_images``; at most ``images`` of them are read)
    instead of generated ones; it is only read.  ``folder``: where the generated JPEGs and the cache go
    (default: a temporary folder, removed afterwards); never inside ``jpegs``.
    """
    images = images or (96 if quick else 600)
    seconds = seconds or (6.0 if quick else 20.0)
    listing = None
    if jpegs is not None:
        jpegs = Path(jpegs).expanduser()
        listing, classes = list_images(jpegs, images)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # per core
    tmp = None
    try:
        if folder is None:
            tmp = tempfile.TemporaryDirectory(prefix="alexnet-bench-")
            folder = Path(tmp.name)
        folder = Path(folder)
        if jpegs is not None and _inside(folder, jpegs):
            raise ValueError(f"{folder}: the scratch folder is inside {jpegs}, which the benchmark must not "
                             "write to; set TMPDIR (or pass folder=) to a place outside it")
        t0 = time.perf_counter()
        if listing is None:
            make_jpegs(folder / "jpegs", images)
            (folder / "jpegs" / "val").symlink_to(folder / "jpegs" / "train")
            source = data.open_imagefolder("bench", folder / "jpegs")
            read = folder / "jpegs"
            shape = "~500×375"
        else:  # the reader's images, listed in place; val = train, as the generated set's symlink
            source = data.Source("bench", listing, listing, classes, list(classes), f"bench {jpegs}")
            read = listing
            shape = f"median {_typical_size(listing)}"
        made = time.perf_counter() - t0
        t0 = time.perf_counter()
        cache_dir = data.build_cache(source, data.SCALES["full"][0], folder / "cache", progress=progress)
        built = time.perf_counter() - t0
        splits = data.load_cache(cache_dir)
        pca = (splits.pca_eigvals, splits.pca_eigvecs)
        result = {
            "reference": reference_rate(read, seconds),
            "jpeg": jpeg_rate(read, splits.mean_image, pca, seconds),
            "cache": cache_rate(splits, seconds),
        }
        n = len(source.train)
        result.update(images=n, seconds_each=seconds, generate_s=made, cache_build_s=built,
                      cache_build_images_per_s=(n + len(source.val)) / built, machine=machine(torch_version=True),
                      where=f"generated JPEGs ({shape})" if listing is None else f"images from {jpegs} ({shape})")
        return result
    finally:
        torch.set_num_threads(threads)
        if tmp is not None:
            tmp.cleanup()
