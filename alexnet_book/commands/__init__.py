"""The command line: ``alexnet-book <command>``, one module per subcommand over the library.

Each module here has ``main(argv) -> int`` and builds its parser with the shared flags of
:mod:`alexnet_book.commands.common`, so the same option has the same name, values and meaning everywhere.  The
library below prints nothing unless asked (``progress=True``); the printing of a command lives here.
"""
from __future__ import annotations

import importlib
import sys

# subcommand -> (module under alexnet_book.commands, one-line help)
SUBCOMMANDS = {
    "summary": ("summary", "per-layer table of a network variant (§3.5)"),
    "data": ("data", "build subsets and preprocessed caches, inspect data sets (§2)"),
    "train": ("train", "train a network with the paper's recipe (§5); the same command again resumes it"),
    "evaluate": ("evaluate", "top-1/top-5 error, centre crop and 10 crops (§6)"),
    "weights": ("weights", "fetch or import pretrained weights (torchvision, BVLC)"),
    "figures": ("figures", "draw the book's figures (build/figures; --evidence: the committed figures/)"),
    "ablate": ("ablate", "re-run the paper's ablations (§3-§7)"),
    "book": ("book", "execute every notebook headless, export HTML and figures"),
    "lab": ("lab", "JupyterLab on the notebooks (127.0.0.1 with a token, root too, no news pop-up)"),
    "bench": ("bench", "benchmarks: `bench data`, `bench train`"),
    "gpu-check": ("gpu_check", "the one-run GPU check: step speed, end to end, projections"),
}


def usage() -> str:
    lines = ["usage: alexnet-book [--version] <command> [options]", "", "commands:"]
    lines += [f"  {name:<9} {text}" for name, (_, text) in SUBCOMMANDS.items()]
    lines += ["", "`alexnet-book <command> --help` documents each command's options."]
    return "\n".join(lines)


def command(name: str):
    """The module that runs subcommand ``name``."""
    return importlib.import_module(f"{__name__}.{SUBCOMMANDS[name][0]}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] == "--version":
        from .. import __version__

        print(f"alexnet-book {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"alexnet-book: unknown command {name!r}; choose one of {', '.join(SUBCOMMANDS)}", file=sys.stderr)
        return 2
    try:
        return int(command(name).main(rest) or 0)
    except SystemExit as exit_:  # --help (0) or a bad option, already said in one line (2)
        return exit_.code if isinstance(exit_.code, int) else 1
    except KeyboardInterrupt:
        print("alexnet-book: interrupted", file=sys.stderr)
        return 130
