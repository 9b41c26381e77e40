"""The flags every command spells the same way.

- ``--quiet``: no progress bars or messages (``--no-progress`` is accepted as the same flag).
- ``--runs DIR``: the folder of run folders and the results store ``results.jsonl`` (default: the project's
  ``runs/``, or ``$ALEXNET_BOOK_RUNS``); ``--out-dir`` and ``--store`` are accepted as the same flag.
- ``--device``: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``, checked when parsed.
- ``--precision``, ``--scale``, ``--schedule``: ``choices=`` from the library's own tables.
- ``--only``: names separated by spaces or commas, checked against the known ones.
- ``--limit N``: at most N images in each split used (train and validation alike), balanced over classes.

Every command's parser is a :class:`Parser`: a bad option is one line and exit status 2.
"""
from __future__ import annotations

import argparse
import re

DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class Parser(argparse.ArgumentParser):
    """argparse, with a bad option reported in one line (``prog: message (see `prog --help`)``, exit status 2)
    instead of the whole usage block first."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def device_name(text: str) -> str:
    if not DEVICE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r}: use auto, cpu, cuda, cuda:N or mps")
    return text


def add_quiet(parser: argparse.ArgumentParser, help: str = "no progress bars or messages") -> None:
    parser.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true", help=help)


def add_runs(parser: argparse.ArgumentParser, *, default=None, aliases=("--out-dir", "--store"),
             help: str = "") -> None:
    """``--runs DIR`` (the old spellings in ``aliases`` name the same flag; a command whose ``--store`` means
    something else leaves it out)."""
    parser.add_argument("--runs", *aliases, dest="runs", default=default, metavar="DIR",
                        help="folder of run folders and the results store results.jsonl "
                             "(default: the project's runs/, or $ALEXNET_BOOK_RUNS)" + help)


def add_device(parser: argparse.ArgumentParser, *, default="auto", help: str | None = None) -> None:
    parser.add_argument("--device", type=device_name, default=default,
                        help=help or f"auto (cuda, mps, cpu), cpu, cuda, cuda:N or mps (default {default})")


def add_precision(parser: argparse.ArgumentParser, *, default=None, choices=("auto", "bf16", "fp32"),
                  help: str | None = None) -> None:
    parser.add_argument("--precision", choices=choices, default=default,
                        help=help or f"numeric precision: {', '.join(choices)} (default {default})")


def add_limit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="at most N images in each split used, balanced over classes (default: all)")


def names(choices, *, what: str = "name"):
    """An argparse ``type`` for ``--only``: names separated by commas (use with ``nargs="+"`` for spaces)."""
    choices = tuple(choices)

    def parse(text: str) -> list[str]:
        out = [t for t in (p.strip() for p in text.split(",")) if t]
        bad = [t for t in out if t not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(bad)}; choose from {', '.join(choices)}")
        return out
    return parse


def add_only(parser: argparse.ArgumentParser, choices, *, what: str = "name", help: str | None = None) -> None:
    parser.add_argument("--only", nargs="+", type=names(choices, what=what), default=None, metavar=what.upper(),
                        help=help or f"only these ({', '.join(choices)}), separated by spaces or commas")


def only(values) -> list[str] | None:
    """The flat list ``--only`` parsed to (None when not given)."""
    return None if values is None else [n for group in values for n in group]
