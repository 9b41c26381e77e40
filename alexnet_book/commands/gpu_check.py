"""``alexnet-book gpu-check``: the GPU check (a)-(d) and projections, written as JSON and Markdown."""
from __future__ import annotations

import argparse
import sys

from .. import gpu_check
from . import common
from .common import Parser


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="alexnet-book gpu-check", description=gpu_check.__doc__.split("\n\n")[0] + " See docs/benchmarks.md.",
        epilog="usually run through `bash scripts/gpu_check.sh` (installs the package, then runs this)")
    parser.add_argument("--dry-run", action="store_true",
                        help="every step on the CPU at toy sizes (seconds; checks the plumbing, measures nothing)")
    parser.add_argument("--out", default=None, help="folder for gpu_check_<card>.json/.md and the figure "
                        "(default results/; with --dry-run runs/gpu_check_dry/)")
    parser.add_argument("--work", default=None, help="scratch folder for the runs (default a temporary folder, "
                        "in /dev/shm where there is one; removed at the end); the CIFAR-10 cache goes to .gpu/cache/")
    parser.add_argument("--budget", type=float, default=None, help="seconds for the whole check (default 400; "
                        "dry run 120)")
    parser.add_argument("--cifar", default=None, help="the CIFAR-10 archive (default .gpu/cifar10-jpg.tar.gz, "
                        "then the book's usual places)")
    common.add_device(parser, default="cuda", help="the GPU: cuda or cuda:N (default cuda)")
    common.add_quiet(parser, help="no progress lines")
    return parser


def main(argv: list[str]) -> int:
    """``alexnet-book gpu-check``: the GPU check (a)-(d) and projections, written as JSON and Markdown."""
    args = build_parser().parse_args(argv)
    try:
        report = gpu_check.run_check(dry_run=args.dry_run, out=args.out, work=args.work, budget_s=args.budget,
                                     cifar=args.cifar, device=args.device, quiet=args.quiet)
    except (ValueError, RuntimeError) as error:
        print(f"alexnet-book gpu-check: {error}", file=sys.stderr)
        return 2
    return 0 if not report["errors"] else 1
