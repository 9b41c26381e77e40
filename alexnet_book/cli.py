"""``alexnet-book``: one thin entry point; each subcommand lives beside the code it runs."""
from __future__ import annotations

import importlib
import sys

# subcommand -> (module, one-line help).  Each module has ``cli_main(argv) -> int``.
SUBCOMMANDS = {
    "summary": ("alexnet_book.model", "per-layer table of a network variant (§3.5)"),
    "data": ("alexnet_book.data", "build subsets and preprocessed caches, inspect data sets (§2)"),
    "train": ("alexnet_book.train", "train a network with the paper's recipe (§5)"),
    "evaluate": ("alexnet_book.evaluate", "top-1/top-5 error, centre crop and 10 crops (§6)"),
    "weights": ("alexnet_book.weights", "fetch or import pretrained weights (torchvision, BVLC)"),
    "figures": ("alexnet_book.figures", "regenerate the book's figures into figures/"),
    "ablate": ("alexnet_book.ablations", "re-run the paper's ablations (§3-§7)"),
    "book": ("alexnet_book.book", "execute every notebook headless, export HTML and figures"),
    "lab": ("alexnet_book.lab", "JupyterLab on the notebooks (127.0.0.1 with a token, root too, no news pop-up)"),
    "bench": ("alexnet_book.bench", "benchmarks: `bench data`, `bench train`"),
    "gpu-check": ("alexnet_book.gpu_check", "the one-run GPU check: step speed, end to end, projections"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: alexnet-book <command> [options]\n\ncommands:")
        for name, (_, text) in SUBCOMMANDS.items():
            print(f"  {name:<9} {text}")
        print("\n`alexnet-book <command> --help` documents each command's options.")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"alexnet-book: unknown command {name!r}; choose one of {', '.join(SUBCOMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    try:
        return int(module.cli_main(rest) or 0)
    except KeyboardInterrupt:
        print("alexnet-book: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
