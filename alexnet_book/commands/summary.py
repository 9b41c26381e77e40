"""``alexnet-book summary``: print the per-layer table of a network variant and its totals (§3.5)."""
from __future__ import annotations

import argparse
import sys

from ..layers import LRN_CONVENTIONS
from ..model import POOLS, SCALES, AlexNet, TorchvisionAlexNet
from ..report import summary
from .common import Parser


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="alexnet-book summary",
                                     description="Per-layer table of a network: output shape, neurons, parameters, "
                                                 "MACs and tower connectivity (§3.5, Fig. 2).")
    parser.add_argument("--model", choices=("alexnet", "torchvision"), default="alexnet",
                        help="the paper's network (default) or torchvision's one-weird-trick alexnet")
    parser.add_argument("--scale", choices=sorted(SCALES), default="full",
                        help="full: the paper's 224 px network; scaled: the 32 px CIFAR-10 network")
    parser.add_argument("--towers", type=int, choices=(1, 2), default=2,
                        help="2: the two-GPU network; 1: the §3.2 footnote's one-GPU network")
    parser.add_argument("--remove", choices=("conv3", "conv4"), default=None, help="drop one middle conv layer (§7)")
    parser.add_argument("--lrn", choices=LRN_CONVENTIONS + ("none",), default="authors",
                        help="LRN convention (§3.3) or none")
    parser.add_argument("--pool", choices=sorted(POOLS), default="overlapping", help="pooling (§3.4)")
    parser.add_argument("--num-classes", type=int, default=1000, help="outputs of fc8 (default 1000)")
    parser.add_argument("--input-size", type=int, default=None, help="image side in pixels (default: 224 or 32)")
    return parser


def main(argv: list[str]) -> int:
    """``alexnet-book summary``: print the per-layer table of a variant and its totals (§3.5)."""
    args = build_parser().parse_args(argv)
    try:
        if args.model == "torchvision":
            model = TorchvisionAlexNet(args.num_classes)
        else:
            model = AlexNet(args.num_classes, scale=args.scale, towers=args.towers, remove=args.remove,
                            lrn=None if args.lrn == "none" else args.lrn, pool=args.pool)
        table = summary(model, args.input_size)
    except ValueError as error:
        print(f"alexnet-book summary: {error}", file=sys.stderr)
        return 2
    print(table.to_string(index=False, formatters={c: "{:,}".format for c in ("neurons", "parameters", "macs")}))
    print(f"total: {table.parameters.sum():,} parameters, {table.macs.sum() / 1e9:.3f} GMAC per image")
    return 0
