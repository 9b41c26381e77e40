"""``alexnet-book evaluate --checkpoint PATH [--ten-crop]``: top-1/top-5 error of a trained network (§6).

By default the network is scored exactly as ``train`` scored it at the end of its run: the run's precision
(as recorded, else its config's resolved here), input scale, memory format and batch sizes, on the run's
data; the numbers are then printed beside the run's recorded ones, with a line saying why when they differ.
"""
from __future__ import annotations

import argparse
import sys

import torch

from ..checkpoints import load_run, read_run
from ..config import PRECISIONS
from ..devices import pick_device, pick_precision
from ..evaluate import evaluate, run_record
from .common import Parser, add_device, add_limit


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="alexnet-book evaluate",
        description="Top-1/top-5 error (§6) of a network saved by `alexnet-book train`, on the centre crop "
                    "and optionally averaged over 10 crops (§4.1). The data set, scale, model, precision and "
                    "batch sizes come from the run (its checkpoint and the results store) unless overridden, "
                    "so the numbers are those train printed.")
    parser.add_argument("--checkpoint", required=True,
                        help="a run's checkpoint.pt or model-<hash>.pt (written by alexnet-book train)")
    parser.add_argument("--ten-crop", action="store_true",
                        help="also report the 10-crop error: 4 corners + centre and their flips, softmax averaged")
    parser.add_argument("--data", default=None, help="data set name (default: the one the network was trained on)")
    parser.add_argument("--root", default=None, help="data set folder (default: the training run's)")
    add_limit(parser)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="images per forward pass (default: the run's, as train's final evaluation used)")
    parser.add_argument("--precision", default=None, choices=PRECISIONS,
                        help="autocast precision (default: the one the run used)")
    add_device(parser)
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)

    from ..data import load_dataset

    try:
        device = pick_device(args.device)
        state, config = read_run(args.checkpoint)
        record = run_record(args.checkpoint, config, state)
        if args.precision is not None:
            precision = pick_precision(args.precision, device)
        elif record.get("precision") in ("bf16", "fp32"):
            precision = pick_precision(record["precision"], device)
        else:
            precision = pick_precision(config.precision, device)
        data = load_dataset(args.data or config.data, args.root or config.root, scale=config.scale,
                            limit=args.limit if args.limit is not None else config.limit, progress=True)
    except (ValueError, FileNotFoundError) as error:
        print(f"alexnet-book evaluate: {error}", file=sys.stderr)
        return 2
    model, config, info = load_run(args.checkpoint, state=state, num_classes=len(data.classes), crop=data.crop)
    model = model.to(device)
    if config.channels_last:  # as train held it: NHWC kernels round differently from NCHW ones
        model = model.to(memory_format=torch.channels_last)
    local_batch = config.batch_size // max(int(record.get("world_size") or 1), 1)
    precision_name = "bf16 autocast" if precision is not None else "fp32"
    input_scale = info["preprocess"].input_scale
    print(f"{args.checkpoint}: {config.model} on {data.name} ({len(data.val)} validation images), device {device}, "
          f"{precision_name}, input ×{input_scale:g}")
    recorded = record.get("metrics") or {}
    views = [("centre crop", False, "", 64)] + ([("10 crops", True, "_10crop", 16)] if args.ten_crop else [])
    differ = []
    for name, ten, suffix, least in views:
        batch_size = args.batch_size or max(local_batch, least)  # train's final evaluation: max(local batch, ...)
        r = evaluate(model, data.val, data.mean_image, data.crop, ten_crop=ten, batch_size=batch_size,
                     device=device, progress=True, input_scale=input_scale, precision=precision)
        print(f"{name:<12} top-1 error {100 * r['top1_error']:6.2f}%  top-5 error {100 * r['top5_error']:6.2f}%   "
              f"(accuracy {100 * r['top1_accuracy']:.2f}% / {100 * r['top5_accuracy']:.2f}%, n={r['n']})")
        top1, top5 = recorded.get(f"val_top1_error{suffix}"), recorded.get(f"val_top5_error{suffix}")
        if top1 is not None and top5 is not None:
            same = round(100 * top1, 2) == round(100 * r["top1_error"], 2) and \
                round(100 * top5, 2) == round(100 * r["top5_error"], 2)
            print(f"{'':<12} the run recorded top-1 {100 * top1:6.2f}%  top-5 {100 * top5:6.2f}%"
                  + ("" if same else "   (differs)"))
            if not same:
                differ.append(name)
    if differ:
        print("why they differ: " + why_different(args, config, record, device, precision, data))
    return 0


def why_different(args, config, record: dict, device, precision, data) -> str:
    """One line naming what this evaluation does otherwise than the run's own final evaluation."""
    reasons = []
    ran_in = record.get("precision")
    now_in = "bf16" if precision is not None else "fp32"
    if ran_in and ran_in != now_in:
        reasons.append(f"the run evaluated in {ran_in}, this in {now_in} (rounding flips near-tied predictions)")
    if record.get("device") and str(record["device"]).split(":")[0] != device.type:
        reasons.append(f"the run ran on {record['device']}, this on {device} (other kernels round differently)")
    if args.data or args.root or args.limit is not None:
        reasons.append("--data/--root/--limit choose other validation images")
    if args.batch_size:
        reasons.append(f"--batch-size {args.batch_size} differs from the run's batches")
    if (record.get("world_size") or 1) > 1:
        reasons.append(f"the run scored its shards in {record['world_size']} processes")
    return "; ".join(reasons) or ("the same settings on the same data; the kernels' summation order differs "
                                  "between calls (e.g. cudnn.benchmark picks algorithms per run)")
