"""``alexnet-book bench train``: how fast one training step runs, the paper's network against torchvision's
(images/s, TFLOP/s, MFU; the last line ``paper_vs_torchvision_per_mac=<ratio>``).  The work is
:mod:`alexnet_book.throughput`; ``commands.bench`` adds these options to its ``train`` subcommand and calls ``run``.
"""
from __future__ import annotations

import argparse

from ..devices import pick_device
from ..throughput import CLOCKS, bench_train, default_out, print_report
from .common import add_device


def _flags(text: str) -> tuple[bool, ...]:
    return {"on": (True,), "off": (False,), "both": (False, True)}[text]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``alexnet-book bench train``."""
    parser.add_argument("--quick", action="store_true",
                        help="a small grid: on a CPU batch 8, fp32 and bf16, channels_last, within 60 s")
    add_device(parser)
    parser.add_argument("--scale", choices=("full", "scaled"), default="full",
                        help="full: 224 px, the paper's network vs torchvision's; scaled: the 32 px CPU-track net")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None,
                        help="default 128 256 512 1024 on a GPU, 16 32 on a CPU (8 with --quick)")
    parser.add_argument("--precisions", nargs="+", choices=("fp32", "bf16"), default=None,
                        help="fp32 and/or bf16 autocast (default both; bf16 only where the device has it)")
    parser.add_argument("--channels-last", choices=("on", "off", "both"), default=None,
                        help="NHWC activations (default both; on only with --quick on a GPU)")
    parser.add_argument("--compile", choices=("on", "off", "both"), default=None,
                        help="torch.compile the networks (default both on a GPU, off on a CPU: ~20 s per shape there)")
    parser.add_argument("--compile-mode", default=None,
                        help="torch.compile mode, e.g. max-autotune or reduce-overhead (CUDA graphs)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating timing rounds per setting (median kept)")
    parser.add_argument("--steps", type=int, default=None, help="training steps per round")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's, one per core)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall time, or cpu: CPU seconds of this process -- steadier on a shared CPU with "
                             "--threads 1 (images per CPU-second)")
    parser.add_argument("--out", default=None, help="JSON report path (default runs/bench/train-<device>-<scale>.json)")


def run(args: argparse.Namespace) -> int:
    """Run ``bench train`` from parsed ``add_arguments`` options; print the report, write the JSON."""
    out = args.out or default_out(pick_device(args.device).type, args.scale)
    report = bench_train(device=args.device, quick=args.quick, batch_sizes=args.batch_sizes,
                         precisions=args.precisions,
                         channels_last=_flags(args.channels_last) if args.channels_last else None,
                         compile=_flags(args.compile) if args.compile else None, compile_mode=args.compile_mode,
                         rounds=args.rounds, steps=args.steps, scale=args.scale, threads=args.threads,
                         clock=args.clock, out=out)
    print(f"wrote {out}")
    print_report(report)
    return 0 if report["results"] else 1
