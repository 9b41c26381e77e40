"""`alexnet-book bench {data,train}`: throughput benchmarks (not tests)."""
from __future__ import annotations

import argparse
import os
import sys
from .common import Parser


def build_parser() -> argparse.ArgumentParser:
    from . import bench_train

    parser = Parser(prog="alexnet-book bench", description=__doc__)
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
    return parser


def _data(args) -> int:
    from .. import bench, data

    if args.images is not None and args.images < 1:
        print(f"alexnet-book bench: --images must be at least 1, not {args.images}", file=sys.stderr)
        return 2
    try:
        r = bench.bench_data(args.quick, images=args.images, seconds=args.seconds, jpegs=args.folder)
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


def _train(args) -> int:
    from . import bench_train

    return bench_train.run(args)


COMMANDS = {"data": _data, "train": _train}


def main(argv: list[str]) -> int:
    # PyTorch's own knob for large CPU tensors on transparent huge pages (fewer page faults when each batch is
    # freshly allocated).  It is read when torch first allocates, so it is set before this command imports torch
    # (hence the imports inside the functions above); both pipelines run under the same setting.
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)
