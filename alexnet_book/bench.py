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

# PyTorch's own knob for large CPU tensors on transparent huge pages (fewer page faults when each batch is freshly
# allocated).  It is read when torch first allocates, so it only takes effect when this module imports torch
# first (the `alexnet-book bench` command); both pipelines run under the same setting.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from . import augment, data  # noqa: E402
from .commands import bench_train  # noqa: E402  (until commands/bench.py takes over this CLI)


def machine() -> str:
    """A one-line description of this machine (CPU model, cores) for recording measurements."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, torch {torch.__version__}"


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
                    if data._is_image_name(f) and not f.startswith(".")]
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
                      cache_build_images_per_s=(n + len(source.val)) / built, machine=machine(),
                      where=f"generated JPEGs ({shape})" if listing is None else f"images from {jpegs} ({shape})")
        return result
    finally:
        torch.set_num_threads(threads)
        if tmp is not None:
            tmp.cleanup()


def cli_main(argv: list[str]) -> int:
    """`alexnet-book bench {data,train}`: throughput benchmarks (not tests)."""
    parser = argparse.ArgumentParser(prog="alexnet-book bench", description=cli_main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("data", help="input pipeline images/s per core: torchvision reference vs the paper's "
                       "pipeline from JPEG and from the uint8 cache")
    p.add_argument("--quick", action="store_true", help="small run that finishes within 60 s")
    p.add_argument("--images", type=int, default=None, help="JPEGs to generate, or at most this many read from "
                   "--folder (default 96 quick, 600 full)")
    p.add_argument("--folder", default=None, metavar="DIR", help="measure your own JPEGs in DIR (an ImageFolder "
                   "root, <class>/ folders or a folder of images) instead of generated ones; DIR is only read")
    p.add_argument("--seconds", type=float, default=None, help="seconds timed per pipeline (default 6 / 20)")
    p = sub.add_parser("train", help="training step images/s, TFLOP/s, MFU and memory: the paper's network vs "
                       "torchvision's; last line paper_vs_torchvision_per_mac=<ratio>")
    bench_train.add_arguments(p)
    args = parser.parse_args(argv)
    return COMMANDS[args.command](args)


def _cli_data(args) -> int:
    if args.images is not None and args.images < 1:
        print(f"alexnet-book bench: --images must be at least 1, not {args.images}", file=sys.stderr)
        return 2
    try:
        r = bench_data(args.quick, images=args.images, seconds=args.seconds, jpegs=args.folder)
    except (ValueError, OSError) as e:
        print(f"alexnet-book bench: {str(e).splitlines()[0]}", file=sys.stderr)
        return 1
    print(f"machine: {r['machine']}; THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', '0')}")
    print(f"{r['images']} {r['where']}, {r['seconds_each']:g} s per pipeline, 1 process, 1 thread; "
          "images per CPU-second")
    print(f"cache build: {r['cache_build_images_per_s']:.0f} images/s with {os.cpu_count()} worker processes")
    for key, label in (("reference", "torchvision reference (RandomResizedCrop+flip+ToTensor+Normalize)"),
                       ("jpeg", f"paper pipeline from JPEG ({data.DECODER} decode, 256, crops+flips+PCA+mean)"),
                       ("cache", "paper pipeline from the uint8 cache")):
        print(f"{label:<74} {r[key]:>9.0f} images/s per core")
    print(f"jpeg_vs_reference={r['jpeg'] / r['reference']:.2f} cache_vs_reference={r['cache'] / r['reference']:.2f}")
    return 0


COMMANDS = {"data": _cli_data, "train": bench_train.run}
