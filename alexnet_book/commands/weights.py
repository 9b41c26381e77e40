"""``alexnet-book weights``: fetch, inspect and try published AlexNet weights (PAPER.md §6).

``fetch`` downloads a published file (checksummed, resumable), ``info`` says what a weights file holds (or where
the published files are), ``predict`` lists the top classes of an image.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from ..bvlc import _squeezed, caffe_blob_shapes, read_caffemodel
from ..pretrained import load_pretrained
from ..weights import (WEIGHTS, _open_image, fetch, find_weights, load_torch_file, predict_top5,
                       weights_dir)
from .. import files
from .common import Parser, add_quiet


def describe(path: str | Path) -> str:
    """What a weights file holds, in words: format, layers and shapes, parameters, checksum."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    lines = [f"{path}  ({path.stat().st_size:,} bytes)"]
    if path.suffix == ".caffemodel" or path.suffix not in (".pth", ".pt"):
        try:
            net = read_caffemodel(path)
        except ValueError:
            if path.suffix == ".caffemodel":
                raise
            net = None
        if net is not None:
            lines.append(f"Caffe model {net.name!r}, {'V1 `layers`' if net.format == 'layers' else '`layer`'} format")
            for layer in net.layers:
                shapes = ", ".join("×".join(map(str, b.shape)) for b in layer.blobs)
                settings = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                    for k, v in layer.settings.items())
                lines.append(f"  {layer.name:<10} {layer.type:<14} {shapes:<28} {settings}")
            lines.append(f"  {net.parameters:,} parameters")
            expected = caffe_blob_shapes()
            found = {layer.name: tuple(_squeezed(b.shape, len(e)) for b, e in zip(layer.blobs, expected.get(layer.name, ())))
                     for layer in net.layers if layer.blobs}
            lines.append("  fits bvlc_model() (AlexNet(lrn='caffe', lrn_across_towers=True)): "
                         + ("yes" if found == expected else "no"))
            spec = WEIGHTS["bvlc"]
            digest = files.digest(path, spec.algorithm)
            lines.append(f"  {spec.algorithm} {digest} ({'the published file' if digest.startswith(spec.digest) else 'not the published ' + spec.filename})")
            return "\n".join(lines)
    obj = load_torch_file(path)
    state = obj.get("model") if isinstance(obj, dict) and isinstance(obj.get("model"), dict) else obj
    if not isinstance(state, dict):
        return "\n".join(lines + [f"  a {type(obj).__name__}, not a state dict"])
    kind = ("torchvision alexnet state dict" if "features.0.weight" in state else
            "alexnet-book checkpoint" if state is not obj else "state dict")
    lines.append(f"PyTorch {kind}")
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            lines.append(f"  {key:<28} {'×'.join(map(str, value.shape))}")
    lines.append(f"  {sum(v.numel() for v in state.values() if isinstance(v, torch.Tensor)):,} parameters")
    spec = WEIGHTS["torchvision"]
    digest = files.digest(path, spec.algorithm)
    lines.append(f"  {spec.algorithm} {digest[:16]}… "
                 f"({'the published file' if digest.startswith(spec.digest) else 'not the published ' + spec.filename})")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="alexnet-book weights",
                                     description="Published AlexNet weights: torchvision's and BVLC Caffe's.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("fetch", help="download a weights file (checksummed, resumable)")
    p.add_argument("source", choices=sorted(WEIGHTS), help="bvlc: bvlc_alexnet.caffemodel; torchvision: IMAGENET1K_V1")
    p.add_argument("--dest", default=None, help="folder to save into (default: $ALEXNET_BOOK_WEIGHTS or data/weights)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the server (default 10)")
    add_quiet(p, help="no progress bar")
    p = sub.add_parser("info", help="what a weights file holds; without PATH, where the published files are")
    p.add_argument("path", nargs="?", default=None, help="a .caffemodel, a torchvision .pth or an alexnet-book checkpoint")
    p = sub.add_parser("predict", help="top-5 ImageNet classes of an image")
    p.add_argument("image", help="an image file")
    p.add_argument("--source", default="torchvision", help="torchvision, bvlc, or a weights file (default torchvision)")
    p.add_argument("--top", type=int, default=5, help="how many classes to list (default 5)")
    return parser


def main(argv: list[str]) -> int:
    """``alexnet-book weights``: fetch, inspect and try published AlexNet weights (PAPER.md §6)."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "fetch":
            path = fetch(args.source, args.dest, timeout=args.timeout, progress=not args.quiet)
            print(f"{path}: {WEIGHTS[args.source].algorithm} checksum OK")
        elif args.command == "info":
            if args.path is None:
                print(f"weights folder: {weights_dir()}")
                for name in WEIGHTS:
                    found = find_weights(name)
                    print(f"  {name:<12} {found if found else 'not found; `alexnet-book weights fetch ' + name + '`'}")
            else:
                print(describe(args.path))
        elif args.command == "predict":
            image = _open_image(args.image)  # a bad image is named before any weights are looked for
            model, info = load_pretrained(args.source)
            if info["transform"] is None:
                raise ValueError(f"{args.source}: a checkpoint of ours has no ImageNet preprocessing; use "
                                 f"--source torchvision or bvlc")
            for name, prob in predict_top5(model, image, info["transform"], info["class_names"], args.top):
                print(f"{prob:7.2%}  {name}")
    except (FileNotFoundError, ValueError, ConnectionError) as error:
        print(f"alexnet-book weights: {error}", file=sys.stderr)
        return 1
    return 0
