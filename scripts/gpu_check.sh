#!/usr/bin/env bash
# The GPU check of issue 10, item 4 (about 10 minutes on one H100):
#   1. `alexnet-book bench train` -- the training step of the paper's network and torchvision's at batch
#      128-1024, fp32 / bf16, NCHW / channels_last, then torch.compile at one batch size (PAPER.md §7);
#   2. a short real training of the full network (224 px) on CIFAR-10 upsampled from the archive in
#      ../shared/data (or $ALEXNET_BOOK_CIFAR10), and the conv1 filters it learned (Fig. 3's layout);
#   3. a Markdown section with the card's name and every number, for docs/benchmarks.md.
#
# Usage (from anywhere; the package installed, e.g. `pip install -e .`):
#   scripts/gpu_check.sh                 # everything lands in $OUT (default runs/gpu_check/<date>)
#   RECORD=1 scripts/gpu_check.sh        # also append the section to docs/benchmarks.md and save the
#                                        # figure through figures.save_figure into figures/
# Knobs (environment): OUT, DEVICE (cuda), EPOCHS (3), LIMIT (20000 training images), BATCH (256),
#   BENCH_ARGS (extra `bench train` options), COMPILE_BATCH (512; empty = skip the compiled runs).
# Smoke-test on a CPU in a minute:
#   DEVICE=cpu BENCH_ARGS="--quick --scale scaled" COMPILE_BATCH= EPOCHS=1 LIMIT=256 BATCH=32 scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu_check/$(date +%Y%m%d-%H%M%S)}
DEVICE=${DEVICE:-cuda}
EPOCHS=${EPOCHS:-3}
LIMIT=${LIMIT:-20000}
BATCH=${BATCH:-256}
COMPILE_BATCH=${COMPILE_BATCH-512}
BENCH_ARGS=${BENCH_ARGS:-}
mkdir -p "$OUT"
export OUT DEVICE EPOCHS LIMIT BATCH COMPILE_BATCH RECORD="${RECORD:-0}"

{ command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } | tee "$OUT/device.txt"

echo "== bench train (no compile) =="
# shellcheck disable=SC2086
alexnet-book bench train --device "$DEVICE" --compile off $BENCH_ARGS --out "$OUT/bench_train.json" \
  | tee "$OUT/bench_train.txt"
if [ -n "$COMPILE_BATCH" ]; then
  echo "== bench train (torch.compile, batch $COMPILE_BATCH, bf16, channels_last) =="
  alexnet-book bench train --device "$DEVICE" --compile on --batch-sizes "$COMPILE_BATCH" --precisions bf16 \
    --channels-last on --out "$OUT/bench_train_compiled.json" | tee "$OUT/bench_train_compiled.txt"
fi

echo "== short training: the full network on CIFAR-10 upsampled to 224 =="
python - <<'PY'
import json, os, time
from pathlib import Path

import torch

from alexnet_book import figures, paper
from alexnet_book.throughput import ILSVRC2012_TRAIN_IMAGES, device_name
from alexnet_book.train import recipe, train

out = Path(os.environ["OUT"])
device = torch.device(os.environ["DEVICE"])
# The book's quick recipe (warm-up, linear decay, He init; docs/training.md) at the paper's 224 px crops.
config = recipe("quick", scale="full", epochs=int(os.environ["EPOCHS"]), limit=int(os.environ["LIMIT"]),
                batch_size=int(os.environ["BATCH"]), device=os.environ["DEVICE"], out_dir=str(out / "runs"),
                ten_crop=False)
start = time.perf_counter()
result = train(config, reuse=False)
wall = time.perf_counter() - start
metrics = result.metrics
fig = figures.plot_conv1_filters(result.model, title=f"conv1 after {config.epochs} epochs of CIFAR-10 at 224 px")
if os.environ.get("RECORD") == "1":
    saved = figures.save_figure(fig, "gpu_check_conv1_filters", paper_figure="Fig. 3", data="cifar10",
                                caption=f"conv1 kernels after a {config.epochs}-epoch CIFAR-10 run at 224 px on "
                                        f"{device_name(device)} (scripts/gpu_check.sh)",
                                config_hash=config.hash(), committed=True)
    figure = os.path.relpath(next(p for p in saved if p.suffix == ".png"), "docs")
else:
    figure = out / "conv1_filters.png"
    fig.savefig(figure, dpi=150)
(out / "train.json").write_text(json.dumps({"config": vars(config), "metrics": metrics, "wall_s": wall}, indent=2,
                                           default=str))

# The Markdown section for docs/benchmarks.md
bench = json.loads((out / "bench_train.json").read_text())
lines = [f"## GPU: {bench['device']} ({time.strftime('%Y-%m-%d')}, torch {bench['torch']})", "",
         "`scripts/gpu_check.sh`; training step = forward + backward + SGD step on random 224 px images.", "",
         "| network | batch | precision | channels_last | compiled | images/s | TFLOP/s | MFU | peak GiB |",
         "|---|---|---|---|---|---|---|---|---|"]
reports = [bench]
if (out / "bench_train_compiled.json").exists():
    reports.append(json.loads((out / "bench_train_compiled.json").read_text()))
for report in reports:
    for r in report["results"]:
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "-"
        memory = f"{r['peak_memory_gb']:.1f}" if r["peak_memory_gb"] is not None else "-"
        lines.append(f"| {r['model']} | {r['batch_size']} | {r['precision']} | {r['channels_last']} | "
                     f"{r['compiled']} | {r['images_per_s']:,.0f} | {r['tflops']:.1f} | {mfu} | {memory} |")
for report in reports:
    if report["best"]:
        b = report["best"]
        lines.append(f"\nBest paper setting{' (compiled)' if b['compiled'] else ''}: {b['images_per_s']:,.0f} images/s "
                     f"(batch {b['batch_size']}, {b['precision']}, channels_last={b['channels_last']}); "
                     f"paper_vs_torchvision_per_mac={report['paper_vs_torchvision_per_mac']:.3f}; "
                     f"compute-only {paper.RECIPE['epochs']} ImageNet epochs: "
                     f"{paper.RECIPE['epochs'] * ILSVRC2012_TRAIN_IMAGES / b['images_per_s'] / 3600:.2f} h.")
lines += ["", f"Short training ({config.epochs} epochs, {metrics.get('steps')} steps, batch {config.batch_size}, "
          f"{min(config.limit, 50000)} CIFAR-10 images upsampled to 256, 224 crops, bf16 autocast where supported): "
          f"{metrics.get('images_per_s', float('nan')):,.0f} images/s end to end in training steps, "
          f"{wall:.0f} s wall including data preparation and validation; top-1 validation error "
          f"{metrics.get('val_top1_error', float('nan')):.1%}.", "", f"![conv1 filters]({figure})", ""]
section = "\n".join(lines)
(out / "benchmarks_section.md").write_text(section)
print(section)
if os.environ.get("RECORD") == "1":
    with open("docs/benchmarks.md", "a") as f:
        f.write("\n" + section)
    print("appended to docs/benchmarks.md")
PY
echo "results in $OUT"
