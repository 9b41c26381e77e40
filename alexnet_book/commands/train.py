"""``alexnet-book train``: one run with the paper's recipe (§5), printed as it goes and recorded in the results store.

Every ``TrainConfig`` field is an option (``--model-option KEY=VALUE`` for ``model_options``); ``--recipe`` starts
from a named recipe.  Under torchrun every process runs this command: ``python -m alexnet_book.commands.train``
runs ``main`` here.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from ..config import PRECISIONS, RECIPES, SCHEDULES, TrainConfig, recipe
from ..data import SCALES
from ..train import train
from .common import Parser, add_device, add_precision, add_quiet, add_runs

HELP = {
    "data": "data set: auto | cifar10 | imagenet | imagenet-subset | imagenette | imagewoof | synthetic",
    "root": "the data set's folder or archive (default: found automatically; ImageNet needs it)",
    "scale": "scaled (36 px stored, 32 px crops, the CPU track) | full (256 stored, 224 crops) | native (32 stored, "
             "32 crops: CIFAR-10's own pixels, Fig. 1); default: the data set's",
    "limit": "at most this many images per split, balanced over classes (smoke runs)",
    "model": "network: alexnet (the paper's) | torchvision (one weird trick) | fourlayer (the Fig. 1 CIFAR net)",
    "model_options": "build_model option KEY=VALUE (repeatable; JSON values), e.g. towers=1, lrn=null, dropout=0",
    "epochs": "passes over the training set (§5: about 90)",
    "max_steps": "stop after this many optimiser steps; the same command with a larger budget continues the run",
    "stop_train_error": "end the run after the first epoch whose training error is at or below this (e.g. 0.25)",
    "batch_size": "global batch (§5: 128), split across processes under torchrun",
    "lr": "initial learning rate ε (§5: 0.01)",
    "momentum": "SGD momentum (§5: 0.9)",
    "weight_decay": "weight decay (§5: 0.0005)",
    "bias_like_authors": "biases without weight decay and at 2× lr, as cuda-convnet2 and Caffe did",
    "schedule": "plateau (§5: lr ÷10 when validation error stops improving) | constant | linear (decay to 0)",
    "patience": "validations without improvement before a plateau drop",
    "max_drops": "most plateau drops (§5: 3)",
    "warmup_epochs": "linear learning-rate warm-up over this many epochs (not in the paper; 0 = none)",
    "input_scale": "multiply the mean-subtracted 0-255 input by this (1 = the paper's raw units)",
    "lrn_follows_input_scale": "divide LRN's alpha by input_scale², so LRN divides by what it would on 0-255 input",
    "init_std": "std of the §5 Gaussian initialisation instead of 0.01, or 'he' for √(2/fan-in) per layer "
                "(alexnet; not in the paper)",
    "init_bias": "the bias of conv2, conv4, conv5, fc6 and fc7 at initialisation instead of §5's 1 (Caffe: 0.1)",
    "crops_flips": "§4.1 random crops and horizontal flips (--no-crops-flips: the centre crop)",
    "pca_colour": "§4.1 PCA colour noise",
    "seed": "random seed (initialisation, data order, augmentation, dropout)",
    "device": "auto (cuda, mps, cpu) | cpu | cuda | cuda:N | mps",
    "precision": "auto (bf16 autocast where supported) | bf16 | fp32",
    "channels_last": "NHWC activations (faster on GPUs and on the CPUs measured)",
    "compile": "torch.compile the network",
    "data_on_device": "hold the uint8 training set on the device and make each batch there (GPUs: no input "
                      "pipeline; the same batches)",
    "deterministic": "deterministic algorithms (with fp32 on a CPU a run repeats bitwise)",
    "eval_every": "epochs between validations",
    "train_eval_size": "also score this many training images in eval mode at each validation (overfitting); 0: off",
    "ten_crop": "final evaluation also with 10 crops (§4.1, §6)",
    "checkpoint_every": "also write the checkpoint every N steps (it is always written at each epoch's end)",
    "log_every": "steps between rows of the metrics log",
    "out_dir": "folder for run folders and results.jsonl; runs: $ALEXNET_BOOK_RUNS, else <project>/runs",
}

# fields whose option is one of commands.common's shared flags, under its own name
DEST = {"out_dir": "runs"}
CHOICES = {"scale": tuple(SCALES), "schedule": SCHEDULES}

RESUMING = """resuming and reusing:
  A run lives in a folder named by its configuration, <runs>/<data>-<model>-<hash> (--runs, default runs/ or
  $ALEXNET_BOOK_RUNS). Its checkpoint.pt is written at every epoch's end (and every --checkpoint-every steps):
  run the same command again after an interruption (Ctrl-C, a crash, a preempted job) and it continues from
  there, bitwise as if never stopped; with a larger --max-steps or --epochs it continues a budgeted run.
  Once finished, the run is recorded in <runs>/results.jsonl and the same command reuses it (prints its numbers,
  trains nothing). --no-reuse trains again from the start in its place: it neither reuses the recorded run nor
  continues a finished checkpoint (an unfinished one still resumes)."""


def parse_value(text: str):
    """A command-line value as JSON when it parses (1, 0.5, null, true, "x"), else the string itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="alexnet-book train",
        description="Train a network with the paper's recipe (§5): SGD, momentum 0.9, weight decay 5e-4, batch "
                    "128, lr 0.01 ÷10 on plateaus. The same code path as alexnet_book.train(); under torchrun "
                    "every process runs this command (python -m alexnet_book.commands.train). Defaults are the paper's; "
                    "--recipe quick is the book's CPU recipe for CIFAR-10. The same command again resumes an "
                    "interrupted run (see below).",
        epilog=RESUMING + "\n\n"
               "examples:\n"
               "  alexnet-book train --data cifar10 --model alexnet --scale scaled --recipe quick\n"
               "  alexnet-book train --data imagenet --root /data/imagenet --device cuda\n"
               "  torchrun --standalone --nproc_per_node=8 -m alexnet_book.commands.train --data imagenet --root /data/imagenet",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="paper",
                        help="start from a named recipe (options given explicitly override it; default paper)")
    for f in dataclasses.fields(TrainConfig):
        add_field(parser, f)
    parser.add_argument("--no-reuse", action="store_true",
                        help="train again from the start even if an identical finished run exists (see below)")
    add_quiet(parser)
    return parser


def add_field(parser: argparse.ArgumentParser, f: dataclasses.Field) -> None:
    """The option of one TrainConfig field; None when not given (the recipe's value then stands)."""
    flag = "--" + f.name.replace("_", "-")
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    text = f"{HELP[f.name]} (default: {default})"
    if f.name == "model_options":
        parser.add_argument("--model-option", dest="model_options", action="append", metavar="KEY=VALUE",
                            default=None, help=HELP[f.name])
    elif f.name == "out_dir":
        add_runs(parser)
    elif f.name == "device":
        add_device(parser, default=None, help=text)
    elif f.name == "precision":
        add_precision(parser, choices=PRECISIONS, help=text + "; fp16 is not offered: it needs loss scaling")
    elif isinstance(default, bool):
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
    elif f.name in CHOICES:
        parser.add_argument(flag, choices=CHOICES[f.name], default=None, help=text)
    else:
        # the annotation's first type ("int | None" -> int); a union of types parses as JSON or text
        parts = [t.strip() for t in str(f.type).split("|") if t.strip() != "None"]
        kind = {"int": int, "float": float}.get(parts[0], str) if len(parts) == 1 else parse_value
        parser.add_argument(flag, type=kind, default=None, help=text)


def config_from_args(args) -> TrainConfig:
    overrides = {}
    for f in dataclasses.fields(TrainConfig):
        value = getattr(args, DEST.get(f.name, f.name))
        if value is None:
            continue
        if f.name == "model_options":
            options = {}
            for item in value:
                if "=" not in item:
                    raise ValueError(f"--model-option {item!r}: write KEY=VALUE, e.g. --model-option towers=1")
                k, v = item.split("=", 1)
                options[k] = parse_value(v)
            value = options
        overrides[f.name] = value
    return recipe(args.recipe, **overrides)


def main(argv: list[str]) -> int:
    """One run, printed as it goes and recorded in the results store; 2 with one line for bad input."""
    try:
        args = build_parser().parse_args(argv)  # a bad option: one line and SystemExit(2) (common.Parser)
        config = config_from_args(args)
        result = train(config, progress=not args.quiet, reuse=not args.no_reuse)
    except (ValueError, FileNotFoundError, FloatingPointError) as error:
        print(f"alexnet-book train: {error}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        m = result.metrics
        text = f"top-1 error {100 * m['val_top1_error']:.2f}%, top-5 error {100 * m['val_top5_error']:.2f}%"
        if "val_top1_error_10crop" in m:
            text += (f"; 10 crops: {100 * m['val_top1_error_10crop']:.2f}% / "
                     f"{100 * m['val_top5_error_10crop']:.2f}%")
        print(f"{result.run_dir}: {text}{' (reused)' if result.reused else ''}")
    return 0


if __name__ == "__main__":  # python -m alexnet_book.commands.train: what torchrun runs on every rank
    sys.exit(main(sys.argv[1:]))
