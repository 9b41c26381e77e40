"""`alexnet-book data {info,cache,subset,download,synthetic}`: inspect data sets, build caches and subsets (§2)."""
from __future__ import annotations

import argparse
import json
import shlex
import sys

from .. import data
from . import common
from .common import Parser

DATA_SETS = list(data.SOURCES)  # what --data takes (any case, "_" for "-", and data.ALIASES: cifar-10, imagefolder)


def _add_data(p: argparse.ArgumentParser, cache: bool = True) -> None:
    """--data and --root; with ``cache``, also --scale, --limit and --quiet (what a cache is built for)."""
    p.add_argument("--data", default="auto", type=data.source_key, choices=DATA_SETS, metavar="NAME",
                   help=f"data set: {', '.join(data.SOURCES)} (default: auto)")
    p.add_argument("--root", default=None, help="where the data set is (folder, archive or manifest); "
                   "default: the usual places (data/README.md)")
    if cache:
        p.add_argument("--scale", choices=list(data.SCALES), default=None,
                       help="full: store 256, crop 224; scaled: store 36, crop 32; native: store 32, crop 32 "
                            "(CIFAR-10's own pixels) (default: by data set)")
        common.add_limit(p)
        common.add_quiet(p, help="no progress bars while decoding")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="alexnet-book data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="what a data set holds: splits, classes, where it is, whether it is cached")
    _add_data(p)
    p.add_argument("--classes", action="store_true", help="also list images per class (from the listing; from "
                   "the cache with --build)")
    p.add_argument("--build", action="store_true", help="build the cache if missing and show mean and PCA")
    p = sub.add_parser("cache", help="decode a data set once into the uint8 cache (resumable, atomic)")
    _add_data(p)
    p.add_argument("--workers", type=int, default=None, help="decoding processes (default: all cores)")
    p = sub.add_parser("subset", help="an N-class × M-image subset as a manifest or symlinks (no copying)")
    _add_data(p, cache=False)
    p.add_argument("--classes", required=True, help="a named list (imagenette, imagewoof, imagenet100), "
                   "a number of classes picked at random with --seed, or comma-separated wnids")
    p.add_argument("--images", type=int, default=None, help="training images per class (default: all)")
    p.add_argument("--val-images", type=int, default=None, help="validation images per class (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed for the random choices (default 0)")
    p.add_argument("--out", default=None, help="manifest .json or symlink folder (default: data/subsets/...)")
    p.add_argument("--symlinks", action="store_true", help="write an ImageFolder tree of symlinks instead")
    p = sub.add_parser("download", help="download and extract Imagenette or Imagewoof (resumable, verified)")
    p.add_argument("name", choices=["imagenette", "imagewoof"], help="which fast.ai data set")
    p.add_argument("--size", choices=data.FASTAI_SIZES, default="320", help="shorter side (default 320)")
    p.add_argument("--sha256", default=None, help="expected sha256 of the archive, if you have one")
    p = sub.add_parser("synthetic", help="write the deterministic synthetic ImageFolder set")
    p.add_argument("--out", default=None, help="folder (default: data/synthetic-...)")
    p.add_argument("--classes", type=int, default=10, help="number of classes (default 10)")
    p.add_argument("--train", type=int, default=60, help="training images per class (default 60)")
    p.add_argument("--val", type=int, default=12, help="validation images per class (default 12)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    return parser


def _default_scale(source: data.Source, scale: str | None) -> str:
    return scale or ("full" if source.name in data.FULL_BY_DEFAULT else "scaled")


def _info(args) -> None:
    source = data.open_source(args.data, args.root)
    print(f"source   {source.description}")
    print(f"classes  {len(source.classes)}: {', '.join(source.class_names[:10])}"
          f"{' ...' if len(source.classes) > 10 else ''}")
    print(f"images   train {len(source.train)}, val {len(source.val)} (listed; storage {source.train.storage})")
    for reason, paths in source.skipped.items():
        print(f"skipped  {len(paths)} {reason}, e.g. {paths[0]}")
    scale = _default_scale(source, args.scale)
    source, size, _ = data.sized_source(source, scale, args.limit)
    _cache_line(args, source, size, scale)
    if args.classes and not args.build:
        print(data.class_counts(source).to_string(index=False))
    if args.build:
        splits = data.load_dataset(args.data, args.root, scale=args.scale, limit=args.limit, progress=not args.quiet)
        print(data.describe(splits).to_string(index=False))
        print(f"cache    {splits.cache}")
        print(f"mean RGB {[round(v, 1) for v in splits.mean_image.mean((0, 1)).tolist()]}")
        print(f"PCA λ    {[round(v, 1) for v in splits.pca_eigvals.tolist()]}")
        if args.classes:
            print(data.class_counts(splits).to_string(index=False))


def _cache_line(args, source: data.Source, size: int, scale: str) -> None:
    """Whether the cache `info` describes is built, and how to build it when not."""
    state, folder = data.cache_status(source, size)
    wanted = f"scale {scale} ({size}px)" + (f", limit {args.limit}" if args.limit else "")
    if state == "built":
        meta = json.loads((folder / "meta.json").read_text())
        print(f"cache    built for {wanted}: {folder} (train {meta['train']}, val {meta['val']} images)")
    else:
        how = ["--data", args.data] + (["--root", args.root] if args.root else []) + ["--scale", scale] \
            + (["--limit", str(args.limit)] if args.limit else [])
        print(f"cache    {'partly built' if state == 'partial' else 'not built'} for {wanted}: {folder}; "
              f"{'finish' if state == 'partial' else 'build'} it with `alexnet-book data cache "
              f"{shlex.join(how)}` or add --build")


def _cache(args) -> None:
    source = data.open_source(args.data, args.root)
    scale = _default_scale(source, args.scale)
    if args.limit:
        source.train = data.limit_images(source.train, args.limit, len(source.classes))
        source.val = data.limit_images(source.val, args.limit, len(source.classes))
    folder = data.build_cache(source, data.SCALES[scale][0], workers=args.workers, progress=not args.quiet)
    meta = json.loads((folder / "meta.json").read_text())
    print(f"{folder}: train {meta['train']}, val {meta['val']} images at {meta['size']}px; "
          f"skipped/converted: {meta['skipped'] or 'none'}")


def _subset(args) -> None:
    source = data.open_source(args.data if args.data != "auto" else "imagenet", args.root)
    classes = args.classes
    if classes.isdigit():
        classes = int(classes)
    elif "," in classes or data.WNID.match(classes):
        classes = [c.strip() for c in classes.split(",") if c.strip()]
    out = data.make_subset(source, classes, args.images, val_images=args.val_images, seed=args.seed,
                           out=args.out, symlinks=args.symlinks)
    print(f"{out}  (load with --data imagenet-subset --root {out})")


def _download(args) -> None:
    src = data.open_fastai(args.name, None, size=args.size, sha256=args.sha256)
    print(f"{src.description}: train {len(src.train)}, val {len(src.val)} images, {len(src.classes)} classes")


def _synthetic(args) -> None:
    out = data.make_synthetic(args.out, classes=args.classes, train_per_class=args.train, val_per_class=args.val,
                              seed=args.seed)
    print(out)


COMMANDS = {"info": _info, "cache": _cache, "subset": _subset, "download": _download, "synthetic": _synthetic}


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except (ValueError, OSError) as e:
        print(f"alexnet-book data: {e}", file=sys.stderr)
        return 1
    return 0
