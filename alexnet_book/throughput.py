"""How fast one training step runs: images/s, TFLOP/s and MFU for the paper's network and torchvision's (PAPER.md §7).

A training step is forward + backward + SGD step (momentum 0.9, weight decay 5e-4, §5) on one batch of random
images.  FLOPs are counted from the model, not measured: 3 × the forward MACs × 2 (a forward, and a backward
that costs about twice the forward; PAPER.md §7 gives ≈4.3 GFLOP per image).  MFU divides the achieved FLOP/s
by the device's peak: the datasheet's dense peak on known GPUs (TF32 for fp32, since cuDNN runs fp32
convolutions in TF32 by default), else -- on a CPU, say -- the speed of a large matrix multiply measured in
the same run, so that on a CPU "MFU" means "share of GEMM speed".

The number the book cares about is the paper network's speed *per MAC* against torchvision's single tower:
grouped convolutions and the per-tower LRN should cost little beyond their multiply-adds.  Both networks are
timed alternately, several rounds each, and the median kept: on a noisy (shared) machine this makes their
ratio far steadier than either speed alone.  ``alexnet-book bench train`` prints it last, as
``paper_vs_torchvision_per_mac=<ratio>``.
"""
from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from . import paper
from .devices import bf16_supported, device_name, pick_device, sync
from .model import AlexNet, TorchvisionAlexNet
from .report import count_macs

# Dense peak TFLOP/s from NVIDIA's datasheets (no sparsity), matched against torch.cuda.get_device_name in
# this order (most specific first).  Unknown devices get a measured matmul peak instead.
GPU_PEAK_TFLOPS = (
    ("H100 PCIe", {"bf16": 756.0, "tf32": 378.0, "fp32": 51.0}),
    ("H100 NVL", {"bf16": 835.0, "tf32": 418.0, "fp32": 60.0}),
    ("H100", {"bf16": 989.0, "tf32": 494.0, "fp32": 67.0}),  # SXM
    ("H200", {"bf16": 989.0, "tf32": 494.0, "fp32": 67.0}),  # SXM (and GH200)
    ("A100", {"bf16": 312.0, "tf32": 156.0, "fp32": 19.5}),
)
ILSVRC2012_TRAIN_IMAGES = 1_281_167  # "1.2 million" in §2; used for the projected 90-epoch time
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}  # how steps are timed (see ``compare``)
REFERENCE = {"full": "torchvision alexnet (one tower, no LRN; PAPER.md §6)",
             "scaled": "the scaled net with one tower and no LRN (torchvision's design at 32 px)"}


@dataclass
class StepResult:
    """One network's training step at one setting."""
    model: str  # "paper" or "torchvision" (the reference; see REFERENCE)
    batch_size: int
    precision: str  # "fp32" or "bf16" (autocast)
    channels_last: bool
    compiled: bool
    images_per_s: float
    step_ms: float
    tflops: float
    mfu: float | None
    peak_memory_gb: float | None
    gmac_per_image: float


def train_flops_per_image(macs_per_image: float) -> float:
    """FLOPs of one training step per image: 3 × forward MACs × 2 (backward ≈ 2 × forward; PAPER.md §7)."""
    return 3 * 2 * macs_per_image


def mfu(images_per_s: float, macs_per_image: float, peak_tflops: float | None) -> float | None:
    """Model FLOPs utilisation: achieved training FLOP/s over the device's peak (None without a peak)."""
    if not peak_tflops:
        return None
    return images_per_s * train_flops_per_image(macs_per_image) / (peak_tflops * 1e12)


def per_mac_ratio(paper_result: StepResult | dict, reference: StepResult | dict) -> float:
    """The paper network's images/s per MAC over the reference's: 1 = its extra pieces cost nothing extra."""
    p = asdict(paper_result) if isinstance(paper_result, StepResult) else paper_result
    r = asdict(reference) if isinstance(reference, StepResult) else reference
    return (p["images_per_s"] * p["gmac_per_image"]) / (r["images_per_s"] * r["gmac_per_image"])


def datasheet_peak(name: str, precision: str, tf32: bool | None = None) -> float | None:
    """A known GPU's dense peak TFLOP/s for bf16 or fp32 (TF32's when cuDNN may use it: ``tf32``, default its flag)."""
    tf32 = torch.backends.cudnn.allow_tf32 if tf32 is None else tf32
    for key, peaks in GPU_PEAK_TFLOPS:
        if key in name:
            if precision == "fp32" and tf32:
                return peaks["tf32"]
            return peaks[precision]
    return None


def measured_peak(device: torch.device, precision: str, seconds: float = 1.0, clock=time.perf_counter) -> float:
    """TFLOP/s of a large square matmul, timed now (the "peak" of a CPU or an unknown GPU) on ``clock``."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    n = 2048 if device.type == "cpu" else 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    sync(device)
    runs, start = 0, clock()
    while runs == 0 or clock() - start < seconds:
        a @ b
        runs += 1
        sync(device)
    return 2 * n ** 3 * runs / (clock() - start) / 1e12


def peak_tflops(device: torch.device, precision: str, seconds: float = 1.0, clock: str = "wall") -> tuple[float, str]:
    """(peak TFLOP/s, where it comes from): the datasheet for a known GPU, else a matmul timed now."""
    if device.type == "cuda":
        peak = datasheet_peak(torch.cuda.get_device_name(device), precision)
        if peak:
            return peak, "datasheet"
    return measured_peak(device, precision, seconds, CLOCKS[clock]), f"measured matmul, {clock} clock"


class TrainStep:
    """One model's training step on a fixed random batch, ready to be timed repeatedly."""

    def __init__(self, model: torch.nn.Module, batch_size: int, input_size: int, num_classes: int,
                 device: torch.device, precision: str, channels_last: bool, compile: bool,
                 compile_mode: str | None = None):
        self.device, self.precision = device, precision
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(device, memory_format=memory_format)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=1e-4, momentum=paper.RECIPE["momentum"],
                                         weight_decay=paper.RECIPE["weight_decay"])
        self.x = torch.randn(batch_size, 3, input_size, input_size, device=device).contiguous(
            memory_format=memory_format)
        self.y = torch.randint(0, num_classes, (batch_size,), device=device)
        self.forward = torch.compile(self.model, mode=compile_mode) if compile else self.model

    def __call__(self) -> None:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            loss = F.cross_entropy(self.forward(self.x), self.y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def time(self, steps: int, clock=time.perf_counter) -> float:
        """Seconds per step over ``steps`` steps (``clock``: wall, or ``time.process_time`` for CPU seconds)."""
        sync(self.device)
        start = clock()
        for _ in range(steps):
            self()
        sync(self.device)
        return (clock() - start) / steps


def networks(scale: str = "full") -> dict[str, torch.nn.Module]:
    """The paper's network and its reference (torchvision's alexnet; at 32 px a one-tower, LRN-free twin)."""
    if scale == "full":
        return {"paper": AlexNet(1000), "torchvision": TorchvisionAlexNet(1000)}
    return {"paper": AlexNet(10, scale=scale), "torchvision": AlexNet(10, scale=scale, towers=1, lrn=None)}


def compare(batch_size: int, *, device: torch.device, precision: str = "fp32", channels_last: bool = False,
            compile: bool = False, compile_mode: str | None = None, rounds: int = 5, steps: int = 2,
            scale: str = "full", peak: float | None = None, clock: str = "wall",
            models: dict[str, torch.nn.Module] | None = None) -> list[StepResult]:
    """Time the paper's network and the reference alternately, ``rounds`` × ``steps`` steps each; medians.

    ``clock="cpu"`` times CPU seconds of this process instead of wall time: with one thread on a CPU shared with
    other jobs, "images per CPU-second" hardly moves with the load, where wall-clock speed does.  ``models``:
    the ``networks(scale)`` to time (built here if not given; a grid of settings reuses one pair).
    """
    models = models or networks(scale)
    size = models["paper"].input_size
    macs = {name: count_macs(m, size) for name, m in models.items()}
    classes = 1000 if scale == "full" else 10
    if compile:  # a fresh compilation per setting (the grid reuses the networks; dynamo's cache would fill up)
        torch._dynamo.reset()
    runners = {name: TrainStep(m, batch_size, size, classes, device, precision, channels_last, compile, compile_mode)
               for name, m in models.items()}
    for run in runners.values():  # warm-up: first allocations, cuDNN's algorithm search, compilation
        run.time(1 if device.type == "cpu" and not compile else 2)
    times: dict[str, list[float]] = {name: [] for name in runners}
    memory: dict[str, float | None] = {name: None for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            times[name].append(run.time(steps, CLOCKS[clock]))
            if device.type == "cuda":
                memory[name] = max(memory[name] or 0.0, torch.cuda.max_memory_allocated(device) / 2**30)
    results = []
    for name in runners:
        step = statistics.median(times[name])
        rate = batch_size / step
        results.append(StepResult(
            model=name, batch_size=batch_size, precision=precision, channels_last=channels_last, compiled=compile,
            images_per_s=rate, step_ms=step * 1e3,
            tflops=rate * train_flops_per_image(macs[name]) / 1e12, mfu=mfu(rate, macs[name], peak),
            peak_memory_gb=memory[name], gmac_per_image=macs[name] / 1e9))
    return results


def default_settings(device_type: str, quick: bool) -> dict:
    """What ``bench_train`` runs by default: the issue's grid on a GPU, small batches on a CPU."""
    if device_type == "cuda":
        if quick:
            return dict(batch_sizes=(256,), precisions=("fp32", "bf16"), channels_last=(True,), compile=(False,),
                        rounds=3, steps=3)
        return dict(batch_sizes=(128, 256, 512, 1024), precisions=("fp32", "bf16"), channels_last=(False, True),
                    compile=(False, True), rounds=5, steps=5)
    # torch.compile costs ~20 s per shape on a small CPU (and more per network), so it is asked for, not default
    if quick:  # within 60 s on a 2-core CPU (channels_last: the faster layout on CPUs too, with this LRN)
        return dict(batch_sizes=(8,), precisions=("fp32", "bf16"), channels_last=(True,), compile=(False,),
                    rounds=3, steps=1)
    return dict(batch_sizes=(16, 32), precisions=("fp32", "bf16"), channels_last=(False, True), compile=(False,),
                rounds=5, steps=1)


def bench_train(*, device: str = "auto", quick: bool = False, batch_sizes=None, precisions=None,
                channels_last=None, compile=None, compile_mode: str | None = None, rounds: int | None = None,
                steps: int | None = None, scale: str = "full", threads: int | None = None, clock: str = "wall",
                out: str | Path | None = None, peak_seconds: float | None = None, progress: bool = True) -> dict:
    """Both networks at every setting (see ``default_settings``); returns and, with ``out``, writes a JSON report.

    ``threads`` sets torch's CPU threads for the run; ``clock="cpu"`` (CPU only) counts CPU seconds instead of
    wall time (see ``compare``).  Settings that fail (out of memory, no compiler for torch.compile) are skipped
    and listed under "skipped".
    """
    from tqdm.auto import tqdm

    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {sorted(CLOCKS)}, not {clock!r}")
    named = str(device).split(":")[0]
    if clock == "cpu" and named not in ("auto", "cpu"):  # before the device is looked for: a GPU-less machine too
        raise ValueError(f"clock='cpu' times CPU seconds, which says nothing about {named}; use clock='wall'")
    dev = pick_device(device)
    if clock == "cpu" and dev.type != "cpu":
        raise ValueError(f"clock='cpu' times CPU seconds, which says nothing about {dev.type}; use clock='wall'")
    grid = default_settings(dev.type, quick)
    for key, value in dict(batch_sizes=batch_sizes, precisions=precisions, channels_last=channels_last,
                           compile=compile, rounds=rounds, steps=steps).items():
        if value is not None:
            grid[key] = value
    wanted = [p for p in grid["precisions"] if p in ("fp32", "bf16")]
    if len(wanted) != len(grid["precisions"]):
        raise ValueError(f"precisions must be 'fp32' and/or 'bf16', not {grid['precisions']!r}")
    dropped = [p for p in wanted if p == "bf16" and not bf16_supported(dev)]
    precisions = [p for p in wanted if p not in dropped]
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest convolution
    settings = [(b, p, c, k) for b in grid["batch_sizes"] for p in precisions for c in grid["channels_last"]
                for k in grid["compile"]]
    rows: list[StepResult] = []
    skipped = [f"bf16: no native bf16 on {device_name(dev)}"] if dropped else []
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        started = time.perf_counter()
        peak_seconds = peak_seconds if peak_seconds is not None else (0.5 if quick else 1.0)
        peaks = {p: peak_tflops(dev, p, peak_seconds, clock) for p in precisions}
        models = networks(scale)
        for b, p, c, k in tqdm(settings, desc="bench train", disable=not progress):
            try:
                rows += compare(b, device=dev, precision=p, channels_last=c, compile=k, compile_mode=compile_mode,
                                rounds=grid["rounds"], steps=grid["steps"], scale=scale, peak=peaks[p][0],
                                clock=clock, models=models)
            except (RuntimeError, torch.OutOfMemoryError) as error:  # out of memory, or no compiler for compile
                skipped.append(f"batch={b} {p} channels_last={c} compile={k}: {str(error).splitlines()[0][:200]}")
            finally:
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
        used_threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(previous_threads)
    report = {
        "device": device_name(dev), "device_type": dev.type, "threads": used_threads, "clock": clock,
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M"), "scale": scale,
        "reference": REFERENCE.get(scale, REFERENCE["scaled"]),
        "peak_tflops": {p: v for p, (v, _) in peaks.items()}, "peak_source": {p: s for p, (_, s) in peaks.items()},
        "seconds": time.perf_counter() - started, "results": [asdict(r) for r in rows], "skipped": skipped,
        "paper_2012_images_per_s": paper.IMAGES_PER_SECOND_2012,
    }
    report.update(summarise(report["results"]))
    if out:
        from .files import atomic_write_text

        Path(out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(out), json.dumps(report, indent=2))
    return report


def summarise(results: list[dict]) -> dict:
    """The per-MAC ratio at every setting, the fastest paper setting, and the ratio there."""
    key = ("batch_size", "precision", "channels_last", "compiled")
    by_setting: dict[tuple, dict[str, dict]] = {}
    for r in results:
        by_setting.setdefault(tuple(r[k] for k in key), {})[r["model"]] = r
    ratios = [dict(zip(key, setting), paper_vs_torchvision_per_mac=per_mac_ratio(pair["paper"], pair["torchvision"]))
              for setting, pair in by_setting.items() if {"paper", "torchvision"} <= pair.keys()]
    best = max((r for r in results if r["model"] == "paper"), key=lambda r: r["images_per_s"], default=None)
    ratio = None
    if best is not None:
        twin = by_setting[tuple(best[k] for k in key)].get("torchvision")
        ratio = per_mac_ratio(best, twin) if twin else None
    return {"ratios": ratios, "best": best, "paper_vs_torchvision_per_mac": ratio}


def print_report(report: dict) -> None:
    """The table, the best setting with its 90-epoch projection, and last the per-MAC ratio line."""
    import pandas as pd

    table = pd.DataFrame(report["results"])
    if not table.empty:
        table["mfu"] = table["mfu"].map(lambda v: f"{v:.1%}" if v is not None else "-")
        table["peak_memory_gb"] = table["peak_memory_gb"].map(lambda v: f"{v:.1f}" if v is not None else "-")
        print(table.to_string(index=False, float_format=lambda v: f"{v:,.3f}" if v < 10 else f"{v:,.1f}"))
    for line in report["skipped"]:
        print(f"skipped {line}")
    load = f", load average {report['load_average']:.1f}" if report.get("load_average") is not None else ""
    per = " per CPU-second" if report.get("clock") == "cpu" else ""
    print(f"device: {report['device']} ({report['device_type']}, threads: {report['threads']}{load}; "
          f"images{per}); "
          f"peak TFLOP/s for MFU: " + ", ".join(f"{p} {v:,.3g} ({report['peak_source'][p]})"
                                                for p, v in report["peak_tflops"].items()))
    print(f"reference: {report['reference']}")
    best = report["best"]
    if best:
        epoch_h = ILSVRC2012_TRAIN_IMAGES / best["images_per_s"] / 3600
        print(f"best paper setting: {best['images_per_s']:,.1f} images/s (batch {best['batch_size']}, "
              f"{best['precision']}, channels_last={best['channels_last']}, compiled={best['compiled']}); "
              f"compute only, {paper.RECIPE['epochs']} ImageNet epochs would take {paper.RECIPE['epochs'] * epoch_h:,.1f} h; "
              f"2012: {report['paper_2012_images_per_s']} images/s on two GTX 580")
    ratio = report["paper_vs_torchvision_per_mac"]
    print(f"paper_vs_torchvision_per_mac={ratio:.3f}" if ratio is not None else "paper_vs_torchvision_per_mac=nan")


def default_out(device_type: str, scale: str) -> Path:
    """Where ``bench train`` writes its JSON unless told: bench/ in the runs folder (``runs.runs_dir()``, not
    committed)."""
    from .runs import runs_dir

    return runs_dir() / "bench" / f"train-{device_type}-{scale}.json"
