"""Timed training through ``train()``: a run of so many steps, its steady images/s."""
from __future__ import annotations

import shutil
import statistics
import time
from typing import TYPE_CHECKING

from .plan import Plan

if TYPE_CHECKING:
    from .context import Check


# ---------------------------------------------------------------------------------------------------------------
# Timed training through train()


def window_rate(history, skip: int = 1) -> float | None:
    """Median images/s over the metrics log's step windows (epoch-end rows and the first ``skip`` windows --
    cuDNN's search, compilation -- left out)."""
    if history is None or len(history) == 0 or "images_per_s" not in history:
        return None
    rows = history[(history["epoch"] % 1 != 0) & history["images_per_s"].notna()]
    rates = list(rows["images_per_s"])[skip:]
    return float(statistics.median(rates)) if rates else None


def timed_train(ctx: "Check", splits, name: str, *, model_scale: str, batch: int, steps: int, compile: bool = False,
                data_on_device: bool = True, epochs: int = 1, ten_crop: bool = False, callback=None,
                keep: bool = False, **changes) -> dict:
    """``train()`` for ``steps`` steps (the book's quick recipe at constant lr unless ``changes`` say otherwise);
    its images/s and metrics.  ``keep``: leave the run folder (a later call with more steps continues it)."""
    from ..runs import ResultsStore
    from ..config import recipe
    from ..train import train

    settings = dict(data=splits.name, scale=model_scale, batch_size=batch, epochs=epochs, max_steps=steps,
                    schedule="constant", warmup_epochs=0.0, lr=0.01, device=str(ctx.device),
                    precision=ctx.plan.precision, compile=compile, data_on_device=data_on_device, ten_crop=ten_crop,
                    log_every=max(1, steps // 8), checkpoint_every=None, out_dir=str(ctx.work / "runs" / name))
    config = recipe("quick", **{**settings, **changes})
    t0 = time.perf_counter()
    result = train(config, progress=False, reuse=False, splits=splits, callback=callback,
                   store=ResultsStore(ctx.work / "runs" / name / "results.jsonl"))
    wall = time.perf_counter() - t0
    m = result.metrics
    rate = window_rate(result.history, skip=2 if compile else 1) or m.get("images_per_s")
    row = {"name": name, "data": splits.name, "source": splits.source, "train_images": len(splits.train),
           "batch_size": batch, "precision": ctx.plan.precision, "channels_last": ctx.device.type == "cuda",
           "compiled": compile, "data_on_device": data_on_device, "steps": m.get("steps"),
           "images_per_s": rate, "images_per_s_whole_run": m.get("images_per_s"), "wall_s": round(wall, 2),
           "train_loss": m.get("train_loss"), "val_top1_error": m.get("val_top1_error")}
    if keep:
        row["_result"] = result
    else:
        shutil.rmtree(ctx.work / "runs" / name, ignore_errors=True)
    return row


def steps_for(seconds: float, rate: float | None, batch: int, plan: Plan, cap: int | None = None) -> int:
    """Steps that take about ``seconds`` at ``rate`` images/s (at least ``plan.min_steps``, at most ``cap``)."""
    steps = int(seconds * (rate or 1000.0) / batch) if rate else plan.min_steps
    steps = max(plan.min_steps, steps)
    return min(steps, cap) if cap else steps
