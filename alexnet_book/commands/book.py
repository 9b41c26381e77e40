"""``alexnet-book book``: run every notebook headless, or --check that they are clean."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..book import MODES, BookError, check_notebooks, find_notebooks, run_book
from .common import Parser


def _names(text: str) -> list[str]:
    """One ``--only`` value: notebook prefixes or names separated by commas (``find_notebooks`` checks them)."""
    return [t for t in (p.strip() for p in text.split(",")) if t]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="alexnet-book book",
        description="Execute the book's notebooks in order (papermill, headless), write executed copies and "
                    "HTML to --out, figures to --figures, and the wall time per notebook to --out/timings.json.")
    parser.add_argument("--mode", choices=MODES, default="quick",
                        help="smoke: seconds of compute on tiny data; quick: real CIFAR-10 on a CPU in minutes; "
                             "full: paper scale on GPUs (default: quick)")
    parser.add_argument("--only", nargs="+", type=_names, default=None, metavar="NOTEBOOK",
                        help="notebook prefixes or names to run, separated by spaces or commas, e.g. 01,02 or "
                             "01 02 (default: all)")
    parser.add_argument("--out", default="build/book", help="folder for executed notebooks, HTML and timings.json "
                                                             "(default: build/book)")
    parser.add_argument("--figures", default=None,
                        help="folder the notebooks save figures to (default: build/figures, not committed; "
                             "--figures figures refreshes the committed notebook figures on purpose)")
    parser.add_argument("--notebooks", default=None,
                        help="folder holding the notebooks (default: ./notebooks, else the one beside the package)")
    parser.add_argument("--kernel", default=None,
                        help="kernelspec name to run the notebooks with (default: a kernel running this Python)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds one cell may run (default: 600 smoke, 3600 quick, none full)")
    parser.add_argument("--fail-fast", action="store_true", help="stop at the first failing notebook")
    parser.add_argument("--check", action="store_true",
                        help="do not run: check the notebooks are committed clean (git's staged copy: no outputs "
                             "or execution counts, the python3 kernel) and have a used 'parameters' cell with a mode")
    return parser


def check(paths: list[Path]) -> int:
    """--check: each problem on stderr, a one-line summary; 1 when a notebook has problems."""
    report = check_notebooks(paths, committed=True)
    for problems in report.values():
        for problem in problems:
            print(problem, file=sys.stderr)
    print(f"checked {len(paths)} notebook(s): {len(paths) - len(report)} clean, {len(report)} with problems")
    return 1 if report else 0


def main(argv: list[str]) -> int:
    """``alexnet-book book``: run every notebook headless, or --check that they are clean."""
    args = build_parser().parse_args(argv)
    only = [n for group in args.only or [] for n in group]
    try:
        paths = find_notebooks(args.notebooks, only)
        if args.check:
            return check(paths)
        records = run_book(args.mode, paths, args.out, args.figures, args.kernel, args.timeout,
                           keep_going=not args.fail_fast)
    except BookError as error:
        print(error, file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as error:
        print(f"alexnet-book book: {error}", file=sys.stderr)
        return 2
    total = sum(r["seconds"] for r in records)
    if args.figures is None:
        from ..figures import figures_dir  # the figures module (matplotlib) only when the book ran

        folder = figures_dir()
        args.figures = os.path.relpath(folder) if folder.is_relative_to(Path.cwd()) else folder
    print(f"{len(records)} notebook(s) in {args.mode} mode, {total:.0f} s; HTML and executed copies in {args.out}, "
          f"figures in {args.figures}")
    return 0
