"""``alexnet-book figures``: regenerate the book's library-drawn figures, headless (quick/smoke into build/figures),
or with ``--evidence`` the committed figures/ from the evidence runs' results; the evidence runs themselves."""
from __future__ import annotations

import argparse

from . import common
from .. import evidence as ev
from ..figure_networks import MODES
from ..figures import figures_dir
from ..neighbours import fig4_evidence
from ..regenerate import GROUPS, regenerate_all
from ..relu_tanh import FIG1_EVIDENCE, fig1_evidence
from ..towers_study import SPECIALISATION_BUDGETS, specialisation_evidence
from .common import Parser


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="alexnet-book figures",
        description="Draw the figures the library draws (Figs. 1, 3, 4 and the looks inside the network) as PNG "
                    "(200 dpi), SVG and PDF, with an index.json manifest: a quick/smoke re-run into build/figures, "
                    "or with --evidence the committed figures/ from the evidence runs' results. Figures in the "
                    "repository come from this command, never from hand edits. Finished identical training runs "
                    "are reused.")
    parser.add_argument("--mode", choices=MODES, default="quick",
                        help="smoke: seconds on tiny data; quick: real CIFAR-10 on a CPU in minutes; full: paper "
                             "scale (default: quick)")
    parser.add_argument("--out", default=None,
                        help="folder for the figures (default: env ALEXNET_BOOK_FIGURES, else <project>/build/figures "
                             "for the quick/smoke figures and <project>/figures for --evidence)")
    common.add_only(parser, GROUPS, what="group",
                    help="draw only these groups, separated by spaces or commas: fig3 (filters, towers), fig4 "
                         "(neighbours), fig1 (ReLU vs tanh), inside (training curves, feature maps, layer "
                         "statistics); default: all")
    parser.add_argument("--no-pretrained", action="store_true",
                        help="skip the conv1 figures of torchvision's and BVLC's ImageNet weights")
    common.add_runs(parser)
    common.add_quiet(parser, help="no progress output")
    evidence = parser.add_argument_group(
        "evidence", "the committed figures come from the evidence runs' result files under results/, not from "
                    "the quick runs (alexnet_book/evidence.py); each run below is resumable and reuses finished runs")
    evidence.add_argument("--evidence", action="store_true",
                          help="draw the committed Figs. 1, 3 and 4 from results/ (nothing is trained)")
    evidence.add_argument("--fig1-evidence", choices=sorted(FIG1_EVIDENCE), default=None, metavar="LAYOUT",
                          help="run Fig. 1 in the authors' configuration (18pct or 80sec) into "
                               "results/fig1_authors_LAYOUT/ (hours on a 2-core CPU)")
    evidence.add_argument("--specialisation-evidence", nargs="?", const="study", default=None,
                          choices=sorted(SPECIALISATION_BUDGETS), metavar="BUDGET",
                          help="train the two-tower network from 5 seeds with 16 and 48 conv1 kernels per tower at "
                               "BUDGET (study: 5,000 images, 12 epochs, the default; quick: 50,000 images, 10 "
                               "epochs, ~25 min a run on 2 cores) into results/specialisation_BUDGET/")
    evidence.add_argument("--kernels-per-tower", type=int, nargs="+", default=None, metavar="K",
                          help="with --specialisation-evidence: only these conv1 kernels per tower (e.g. 48, the "
                               "paper's; default: 48 then 16); the folder is complete once these are in")
    evidence.add_argument("--fig4-evidence", action="store_true",
                          help="Fig. 4's neighbours of a study network into results/fig4_study/")
    return parser


def run_evidence(args) -> int:
    """The evidence runs asked for, then (``--evidence``) the committed figures drawn from results/."""
    try:
        if args.fig1_evidence:
            print(fig1_evidence(args.fig1_evidence, progress=not args.quiet))
        if args.specialisation_evidence:
            chosen = {"kernels_per_tower": tuple(args.kernels_per_tower)} if args.kernels_per_tower else {}
            print(specialisation_evidence(progress=not args.quiet, budget=args.specialisation_evidence, **chosen)
                  ["pooled"].to_string(index=False))
        if args.fig4_evidence:
            print(fig4_evidence(progress=not args.quiet))
        if args.evidence:
            names = ev.draw_evidence(args.out, progress=not args.quiet)
            print(f"{len(names)} evidence figures written to {figures_dir(args.out, committed=True)}: "
                  f"{', '.join(names) or 'none (no results yet)'}")
    except (FileNotFoundError, ValueError) as error:
        print(f"alexnet-book figures: {error}")
        return 1
    return 0


def main(argv: list[str]) -> int:
    """``alexnet-book figures``: regenerate the book's library-drawn figures into figures/, headless."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display needed
    args = build_parser().parse_args(argv)
    if args.evidence or args.fig1_evidence or args.specialisation_evidence or args.fig4_evidence:
        return run_evidence(args)
    try:
        names = regenerate_all(args.mode, args.out, only=common.only(args.only) or list(GROUPS),
                               pretrained=not args.no_pretrained, out_dir=args.runs, progress=not args.quiet)
    except (FileNotFoundError, ValueError) as error:
        print(f"alexnet-book figures: {error}")
        return 1
    print(f"{len(names)} figures written to {figures_dir(args.out)}: {', '.join(names)}")
    return 0
