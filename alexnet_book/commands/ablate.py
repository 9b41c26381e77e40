"""``alexnet-book ablate``: re-run the paper's ablations and write the table (CSV, Markdown, LaTeX, figure)."""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from ..ablations import (ABLATION, ABLATIONS, PRESETS, budget_text, capacity_summary, capacity_text, colour_summary,
                         colour_text, display_table, export, plan_runs, results_dir, run_ablations, save_csv,
                         seed_results, select, trained_capacity, trained_colour, trained_lrn_activity,
                         trained_views, views_summary, views_text)
from ..ablations.tables import _number
from ..config import RECIPES
from ..files import atomic_write_text
from ..mechanisms import lrn_summary
from ..data import SCALES
from . import common
from .common import Parser

# the settings without a preset: the paper's recipe, 2 epochs, one seed
DEFAULTS = dict(recipe="paper", data="auto", scale="scaled", budget_epochs=2, budget_steps=None, seeds=(0,),
                limit=None, device="auto")
# what --only accepts: the rows' names and the paper.CLAIMS names they test (``ablations.select``)
ONLY = tuple(ABLATION) + tuple(dict.fromkeys(a.claim for a in ABLATIONS if a.claim and a.claim not in ABLATION))


def _preset_text(name: str) -> str:
    p = PRESETS[name]
    budget = budget_text(p["budget_epochs"], p["budget_steps"], p["limit"])
    return (f"recipe {p['recipe']}, data {p['data']}, scale {p['scale']}, {budget}, "
            f"seeds {' '.join(map(str, p['seeds']))}, device {p['device']}")


def _only(text: str) -> list[str]:
    """One ``--only`` value: names separated by commas (checked by ``ablations.select``, which names the bad one)."""
    return [t for t in (p.strip() for p in text.split(",")) if t]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="alexnet-book ablate",
        description="Re-run the paper's ablations (§3.1-§7): the baseline and one run per variant and seed, "
                    "reusing finished runs from the results store and resuming interrupted ones. Delta = "
                    "error(with the paper's choice) - error(without it), in percentage points: the paper's "
                    "claims are negative.",
        epilog="examples:\n"
               "  alexnet-book ablate --list\n"
               "  alexnet-book ablate --quick --out results/ablations_quick.csv\n"
               "  alexnet-book ablate --data cifar10 --scale scaled --epochs 2 --seeds 0 1 2 --only lrn,dropout "
               "--recipe quick --out results/ablations_mine.csv\n"
               "  alexnet-book ablate --full --root /data/imagenet-subset --out results/ablations_full.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    preset = parser.add_mutually_exclusive_group()
    preset.add_argument("--quick", action="store_true",
                        help="the whole table on real CIFAR-10, scaled network, 1 seed, about 22 min on 2 CPU "
                             f"cores: {_preset_text('quick')}")
    preset.add_argument("--full", action="store_true",
                        help=f"the 224 network on an ImageNet subset on a GPU: {_preset_text('full')}")
    preset.add_argument("--study", action="store_true",
                        help="every claim of the paper with 3 seeds at a budget where each can show, on real "
                             f"CIFAR-10, about 2 h on 2 CPU cores: {_preset_text('study')}; writes "
                             "results/ablations_study.csv (+ .md, .tex, figure) unless --out says otherwise")
    preset.add_argument("--smoke", action="store_true",
                        help=f"seconds of compute on synthetic data, to check the plumbing: {_preset_text('smoke')}")
    parser.add_argument("--data", default=None, help="data set name for load_dataset (cifar10, imagenet-subset, "
                        "imagenette, synthetic, auto); default: the preset's, else auto")
    parser.add_argument("--root", default=None, help="folder or archive of the data set (default: load_dataset's "
                        "search: env ALEXNET_BOOK_CIFAR10, ../shared/data, data/)")
    parser.add_argument("--scale", choices=tuple(SCALES), default=None,
                        help="network scale: scaled (32 px, CPU track), full (224 px, the paper's) or native "
                             "(CIFAR-10's own 32 px); default: the preset's, else scaled")
    parser.add_argument("--epochs", type=int, default=None, help="budget in epochs per run (default: the preset's, else 2)")
    parser.add_argument("--steps", type=int, default=None, help="budget in optimiser steps per run; overrides --epochs (default: none)")
    common.add_limit(parser)
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds, e.g. --seeds 0 1 2; the table shows mean ± std over them (default: 0)")
    parser.add_argument("--only", nargs="+", type=_only, default=None, metavar="NAME",
                        help="ablations or claim names, separated by spaces or commas (default: all; see --list): "
                             + ", ".join(ONLY))
    common.add_device(parser, default=None, help="auto (cuda, mps, cpu), cpu, cuda, cuda:N or mps "
                                                 "(default: the preset's, else auto)")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default=None, help="training recipe every run starts from (config.RECIPES: "
                        "paper = §5 as written, quick = the book's CPU recipe, smoke); default: the preset's, "
                        "else paper")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help="extra TrainConfig field shared by every run, e.g. --set lr=0.02 (JSON values)")
    # --runs is the folder of run folders (as everywhere); the results file is a flag of its own here, since
    # ablate has always taken --store as the JSONL file itself (not the folder common.add_runs means by it)
    common.add_runs(parser, aliases=("--out-dir",), help="; sets out_dir of every run")  # --store: the file below
    parser.add_argument("--results-store", "--store", dest="store", default=None, metavar="FILE",
                        help="results store (JSONL) to reuse finished runs from (default: <runs>/results.jsonl, "
                             "i.e. runs/results.jsonl, as alexnet-book train)")
    parser.add_argument("--out", default=None,
                        help="write the table here (.csv with machine/date/command header; .md, .tex and the "
                             "figure beside it); the CSV is rewritten after every finished run; at the end each run's "
                             "numbers per seed (<stem>_seeds.csv), the LRN check of the trained networks with LRN "
                             "(<stem>_lrn.csv), for remove_conv3/4 the capacity check on every training image "
                             "(<stem>_capacity.csv) and for pca_colour the colour-noise check (<stem>_colour.csv)")
    parser.add_argument("--no-figure", action="store_true", help="do not draw the figure with --out")
    parser.add_argument("--list", action="store_true", help="list the ablations and the paper's numbers, then exit")
    common.add_quiet(parser, help="no progress bars")
    return parser


def print_list() -> None:
    for a in ABLATIONS:
        numbers = " / ".join(t for t in (_number(a.paper_top1), _number(a.paper_top5)) if t) or a.paper_words
        print(f"{a.name:<17} {a.section:<13} {a.description}  [paper: {numbers}]")


def settings_from(args) -> tuple[dict, tuple | None]:
    """The run settings: the preset's (or the defaults), then the flags given; and the preset's rows."""
    name = ("quick" if args.quick else "full" if args.full else "study" if args.study else
            "smoke" if args.smoke else None)
    settings = dict(PRESETS[name]) if name else dict(DEFAULTS)
    preset_rows = settings.pop("ablations", None)
    if args.recipe is not None:
        settings["recipe"] = args.recipe
    for key, value in (("data", args.data), ("scale", args.scale), ("budget_epochs", args.epochs),
                       ("budget_steps", args.steps), ("limit", args.limit), ("device", args.device)):
        if value is not None:
            settings[key] = value
    if args.seeds is not None:
        settings["seeds"] = tuple(args.seeds)
    return settings, preset_rows


def base_from(args) -> dict:
    """The TrainConfig fields every run shares: --set FIELD=VALUE (JSON values), --root, --runs."""
    base = {}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r} must be FIELD=VALUE, e.g. --set lr=0.02")
        try:
            base[key] = json.loads(value)
        except json.JSONDecodeError:
            base[key] = value
    if args.root is not None:
        base["root"] = args.root
    if args.runs is not None:
        base["out_dir"] = args.runs
    return base


def _write_check(stem: Path, suffix: str, command: str, frame, lines, about: str) -> Path:
    """<stem>_<suffix>.csv: the command, what the check is (``about``), its summary ``lines``, then ``frame``, each
    header line behind "# " (so ``pd.read_csv(path, comment="#")`` reads the rows); written atomically."""
    path = stem.with_name(f"{stem.name}_{suffix}.csv")
    atomic_write_text(path, f"# command: {command}\n# {about}\n" + "".join(f"# {line}\n" for line in lines)
                      + frame.to_csv(index=False, lineterminator="\n"))
    return path


def write_outputs(table, args, settings, only, base, *, command, configuration, wall) -> list:
    """--out: the table (CSV, .md, .tex, figure), and beside it each run's own numbers per seed (_seeds.csv), the
    LRN activity of the trained networks with LRN (_lrn.csv) and, for the rows that remove a middle conv layer,
    the capacity check on the whole training split (_capacity.csv) and, for PCA colour noise, how much the noise
    moves the networks trained without it (_colour.csv) and, for the 10-crop and ensemble rows, how often the
    predictions they average disagree (_views.csv; the last four printed too)."""
    paths = export(table, args.out, command=command, configuration=configuration, wall_s=wall,
                   figure=not args.no_figure)
    runs = plan_runs(**{k: v for k, v in settings.items() if k != "recipe"}, ablations=only, base=base,
                     recipe=settings["recipe"])
    stem = Path(args.out).with_suffix("")
    seeds = seed_results(runs, args.store)
    if len(seeds):
        paths.append(_write_check(stem, "seeds", command, seeds.round(4), [],
                                  "every finished run of the table, one row per run and seed, from the results "
                                  "store: the per-seed numbers behind its mean ± std (errors in %)"))
    lrn = trained_lrn_activity(runs, args.store)
    if len(lrn):
        lines = lrn_summary(lrn)
        paths.append(_write_check(stem, "lrn", command, lrn.round(6), lines,
                                  "LRN activity of each seed's trained networks with LRN that the table compares "
                                  "(the baseline; a row's own 'with' run), on 256 validation images "
                                  "(alexnet_book.mechanisms)"))
        print("LRN check of the trained networks:\n  " + "\n  ".join(lines))
    capacity = trained_capacity(runs, args.store)
    if len(capacity):
        lines = [capacity_text(s) for s in capacity_summary(capacity)]
        probe = runs[0][2].train_eval_size
        probe_text = (f"probe_delta: the same delta on the {probe} fixed training images each run scored itself"
                      if probe else "probe_delta: empty, the recipe scores no fixed training images")
        paths.append(_write_check(stem, "capacity", command, capacity.round(4), lines,
                                  "the capacity check on every training image: each seed's baseline and network "
                                  "without the layer, eval mode, centre crop, fp32 "
                                  f"(alexnet_book.ablations.trained_capacity); {probe_text}"))
        print("\n".join(lines))
    colour = trained_colour(runs, args.store)
    if len(colour):
        lines = [colour_text(c) for c in colour_summary(colour)]
        paths.append(_write_check(stem, "colour", command, colour.round(4), lines,
                                  "PCA colour noise's mechanism check: each seed's network trained without the noise "
                                  "and its baseline, top-1 validation error (eval mode, centre crop, fp32) clean and "
                                  "with the training draw of the noise (alexnet_book.ablations.trained_colour)"))
        print("\n".join(lines))
    views = trained_views(runs, [a.name for a in select(only)], args.store)
    if len(views):
        lines = [views_text(v) for v in views_summary(views)]
        paths.append(_write_check(stem, "views", command, views.round(4), lines,
                                  "what the rows that train nothing rest on: each seed's baseline, its 10-crop average "
                                  "against its centre crop (ten_crop) and every pair of seeds' baselines against each "
                                  "other (ensemble), on the validation images, eval mode, fp32 "
                                  "(alexnet_book.ablations.trained_views)"))
        print("\n".join(lines))
    return paths


def main(argv: list[str]) -> int:
    """``alexnet-book ablate``: re-run the paper's ablations and write the table (CSV, Markdown, LaTeX, figure)."""
    args = build_parser().parse_args(argv)
    if args.list:
        print_list()
        return 0
    settings, preset_rows = settings_from(args)
    if args.study and args.out is None:
        args.out = str(results_dir() / "ablations_study.csv")
    only = common.only(args.only)
    only = ",".join(only) if only else (",".join(preset_rows) if preset_rows else None)
    try:
        base = base_from(args)
        select(only)  # an unknown name is refused before anything runs
    except ValueError as err:
        print(f"alexnet-book ablate: {err}", file=sys.stderr)
        return 2
    command = "alexnet-book ablate " + " ".join(shlex.quote(a) for a in argv)
    configuration = {**settings, "base": base, "ablations": only or "all"}
    start = time.time()

    def write(table):
        if args.out:
            save_csv(table, args.out, command=command, configuration=configuration, wall_s=time.time() - start)

    try:
        table = run_ablations(**settings, ablations=only, store=args.store, progress=not args.quiet,
                              on_update=write, base=base)
    except (ValueError, FileNotFoundError) as err:
        print(f"alexnet-book ablate: {err}", file=sys.stderr)
        return 2
    wall = time.time() - start
    print(display_table(table).to_string(index=False))
    print(f"wall time {wall:.0f} s" + (f"; trained in {table.attrs['precision']}" if "precision" in table.attrs
                                        else ""))
    if args.out:
        paths = write_outputs(table, args, settings, only, base, command=command, configuration=configuration,
                              wall=wall)
        print("wrote " + ", ".join(str(p) for p in paths))
    return 0
