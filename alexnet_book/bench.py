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
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from . import augment, data, throughput  # noqa: E402


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


def reference_rate(folder: Path, seconds: float, batch_size: int = 32) -> float:
    """torchvision's ImageNet training input: ImageFolder + RandomResizedCrop + flip + ToTensor + Normalize."""
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor(),
                             transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    loader = torch.utils.data.DataLoader(datasets.ImageFolder(str(folder / "train"), tf), batch_size=batch_size,
                                         shuffle=True, num_workers=0)
    batches = _forever(loader)

    def step():
        x, _ = next(batches)
        return x.shape[0]

    return _rate(step, seconds)


def jpeg_rate(folder: Path, mean_image: torch.Tensor, pca, seconds: float, batch_size: int = 32) -> float:
    """The paper's pipeline from JPEG files: JpegDataset (§2 rescale + centre crop) + train_batch (§4.1)."""
    listing, _ = data.scan_folder(folder / "train")
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


def bench_data(quick: bool = True, *, images: int | None = None, seconds: float | None = None,
               folder: str | Path | None = None, progress: bool = False) -> dict:
    """Images/s per core of the reference, paper-from-JPEG and paper-from-cache pipelines (one run)."""
    images = images or (96 if quick else 600)
    seconds = seconds or (6.0 if quick else 20.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # per core
    tmp = None
    try:
        if folder is None:
            tmp = tempfile.TemporaryDirectory(prefix="alexnet-bench-")
            folder = Path(tmp.name)
        folder = Path(folder)
        t0 = time.perf_counter()
        make_jpegs(folder / "jpegs", images)
        (folder / "jpegs" / "val").symlink_to(folder / "jpegs" / "train")
        made = time.perf_counter() - t0
        source = data.open_imagefolder("bench", folder / "jpegs")
        t0 = time.perf_counter()
        cache_dir = data.build_cache(source, data.SCALES["full"][0], folder / "cache", progress=progress)
        built = time.perf_counter() - t0
        splits = data.load_cache(cache_dir)
        pca = (splits.pca_eigvals, splits.pca_eigvecs)
        result = {
            "reference": reference_rate(folder / "jpegs", seconds),
            "jpeg": jpeg_rate(folder / "jpegs", splits.mean_image, pca, seconds),
            "cache": cache_rate(splits, seconds),
        }
        result.update(images=images, seconds_each=seconds, generate_s=made, cache_build_s=built,
                      cache_build_images_per_s=2 * images / built, machine=machine())
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
    p.add_argument("--images", type=int, default=None, help="JPEGs to generate (default 96 quick, 600 full)")
    p.add_argument("--seconds", type=float, default=None, help="seconds timed per pipeline (default 6 / 20)")
    p = sub.add_parser("train", help="training step images/s, TFLOP/s, MFU and memory: the paper's network vs "
                       "torchvision's; last line paper_vs_torchvision_per_mac=<ratio>")
    throughput.add_arguments(p)
    args = parser.parse_args(argv)
    return COMMANDS[args.command](args)


def _cli_data(args) -> int:
    r = bench_data(args.quick, images=args.images, seconds=args.seconds)
    print(f"machine: {r['machine']}; THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', '0')}")
    print(f"{r['images']} generated JPEGs (~500×375), {r['seconds_each']:.0f} s per pipeline, 1 process, 1 thread; "
          "images per CPU-second")
    print(f"cache build: {r['cache_build_images_per_s']:.0f} images/s with {os.cpu_count()} worker processes")
    for key, label in (("reference", "torchvision reference (RandomResizedCrop+flip+ToTensor+Normalize)"),
                       ("jpeg", f"paper pipeline from JPEG ({data.DECODER} decode, 256, crops+flips+PCA+mean)"),
                       ("cache", "paper pipeline from the uint8 cache")):
        print(f"{label:<74} {r[key]:>9.0f} images/s per core")
    print(f"jpeg_vs_reference={r['jpeg'] / r['reference']:.2f} cache_vs_reference={r['cache'] / r['reference']:.2f}")
    return 0


COMMANDS = {"data": _cli_data, "train": throughput.cli_train}
