#!/usr/bin/env bash
# The GPU check of issue 20: one run on an H100/H200, inside 8 minutes, no network needed.
# The work is done by `alexnet-book gpu-check` (alexnet_book/gpu_check/); this script only installs the
# package and runs it:
#   (a) the training step of the paper's network and torchvision's at 224 px, batch 128-1024 x fp32/bf16 x
#       channels_last x torch.compile: images/s, TFLOP/s, MFU against the card's datasheet peak, peak memory;
#   (b) end-to-end training images/s at 224 px with the uint8 cache held on the GPU (train(data_on_device=True)):
#       a synthetic ImageNet-like set and, when the archive is in .gpu/, CIFAR-10 upsampled to 256;
#   (c) the scaled (32 px) network's images/s on CIFAR-10 and what a 2-hour CPU ablation study costs on the card;
#   (d) the full-size two-tower network trained on CIFAR-10 at 224 for the minutes left: conv1 figure and the
#       towers' colour specialisation (Fig. 3, §6.1);
#   then 90-epoch ImageNet projections (one card, eight) against the targets.
#
# Usage, from the project root of a clone (the CIFAR-10 archive copied into the git-ignored .gpu/):
#   mkdir -p .gpu && cp /path/to/cifar10-jpg.tar.gz .gpu/
#   bash scripts/gpu_check.sh
# It writes $OUT/gpu_check_<card>.json, $OUT/gpu_check_<card>.md (a section for docs/benchmarks.md) and
# $OUT/gpu_check_<card>_conv1.png; OUT defaults to results/.  Knobs: OUT, BUDGET (seconds for the check itself,
# default 400), PYTHON (default python3), INSTALL=0 (use the source tree as it is: no pip); extra arguments go
# to `alexnet-book gpu-check` (see its --help).
# Try it on a CPU in seconds: bash scripts/gpu_check.sh --dry-run   (writes runs/gpu_check_dry/ unless OUT is set)
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
BUDGET=${BUDGET:-400}
args=(--budget "$BUDGET")
if [ -n "${OUT:-}" ]; then args+=(--out "$OUT"); fi

export PYTHONUNBUFFERED=1
# the package itself, not its dependencies (the machine has torch & co. and no network); failing that, the source
if [ "${INSTALL:-1}" = 0 ] || ! "$PYTHON" -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1; then
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
{ command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } || true

# the check keeps to its budget; the timeout is the backstop (the JSON is rewritten after every step)
timeout --signal=TERM --kill-after=20 $((BUDGET + 50)) "$PYTHON" -m alexnet_book.cli gpu-check "${args[@]}" "$@"
status=$?
echo "gpu-check exit status $status"
exit $status
