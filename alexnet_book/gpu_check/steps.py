"""The four steps of the check, (a) to (d); each returns its part of the report."""
from __future__ import annotations

import shutil
import time
from dataclasses import asdict, replace
from typing import TYPE_CHECKING

import torch

from .datasets import cifar_splits, synthetic_imagenet
from .plan import CPU_ABLATION_IMAGES_PER_S, CPU_STUDY_HOURS, QUICK_TABLE_IMAGES
from .timing import steps_for, timed_train

if TYPE_CHECKING:
    from .context import Check


# ---------------------------------------------------------------------------------------------------------------
# The four steps


def step_bench(ctx: "Check", until: float) -> dict:
    """(a) the training step of both networks over the plan's settings, in priority order, while time lasts."""
    from .. import throughput

    plan, device = ctx.plan, ctx.device
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    models = throughput.networks(plan.scale)
    rows, skipped, cost = [], [], {False: 10.0 if not plan.dry else 0.5, True: 90.0}
    for batch, precision, channels_last, compile in plan.bench:
        label = f"batch={batch} {precision} channels_last={channels_last} compile={compile}"
        if precision not in ctx.peaks:
            skipped.append(f"{label}: no {precision} on this device")
            continue
        if time.perf_counter() + cost[compile] > until:  # priority order: the rest is listed as skipped
            skipped.append(f"{label}: time budget")
            continue
        t0 = time.perf_counter()
        try:
            results = throughput.compare(batch, device=device, precision=precision, channels_last=channels_last,
                                         compile=compile, rounds=plan.bench_rounds, steps=plan.bench_steps,
                                         scale=plan.scale, peak=ctx.peaks[precision]["tflops"], models=models)
        except (RuntimeError, torch.OutOfMemoryError) as error:  # out of memory, no compiler
            skipped.append(f"{label}: {str(error).splitlines()[0][:200]}")
            continue
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
        cost[compile] = max(cost[True], time.perf_counter() - t0) if compile else 1.5 * (time.perf_counter() - t0)
        for r in results:
            row = asdict(r)
            if precision == "fp32" and "fp32_non_tensor" in ctx.peaks:
                row["mfu_vs_fp32_non_tensor"] = throughput.mfu(r.images_per_s, r.gmac_per_image * 1e9,
                                                               ctx.peaks["fp32_non_tensor"]["tflops"])
            rows.append(row)
        ctx.say(f"bench {label}: " + ", ".join(f"{r.model} {r.images_per_s:,.0f} images/s" for r in results))
    summary = throughput.summarise(rows)
    paper_rows = [r for r in rows if r["model"] == "paper"]
    best_bf16 = max((r for r in paper_rows if r["precision"] == "bf16"), key=lambda r: r["images_per_s"],
                    default=None)
    return {"results": rows, "skipped": skipped, "best": summary["best"], "best_bf16": best_bf16,
            "paper_vs_torchvision_per_mac": summary["paper_vs_torchvision_per_mac"], "ratios": summary["ratios"],
            "reference": throughput.REFERENCE.get(plan.scale)}


def _best_uncompiled_batch(ctx: "Check") -> tuple[int, float | None]:
    bench = ctx.report["steps"].get("bench", {})
    rows = [r for r in bench.get("results", []) if r["model"] == "paper" and not r["compiled"]
            and r["precision"] == ctx.plan.precision]
    if not rows:
        return ctx.plan.e2e_batch, None
    best = max(rows, key=lambda r: r["images_per_s"])
    return best["batch_size"], best["images_per_s"]


def step_end_to_end(ctx: "Check", until: float) -> dict:
    """(b) train() with the set on the device: a synthetic ImageNet-like set, CIFAR-10 at 224; then the same with
    the host input path (data_on_device=False) and compiled, while time lasts."""
    from ..data import ImageArrays

    plan, device = ctx.plan, ctx.device
    batch, compute_rate = _best_uncompiled_batch(ctx)
    runs, skipped, notes = [], [], {}
    t0 = time.perf_counter()
    synthetic = synthetic_imagenet(plan, device)
    notes["synthetic_made_s"] = round(time.perf_counter() - t0, 2)
    cap = len(synthetic.train) // batch - 1  # within one epoch: no validation or checkpoint inside the timing

    def run(splits, name, steps=None, **kw):
        steps = steps or steps_for(kw.pop("seconds", plan.e2e_seconds), kw.pop("rate", compute_rate), batch, plan,
                                   min(cap, len(splits.train) // batch - 1))
        row = timed_train(ctx, splits, name, model_scale=plan.scale, batch=batch, steps=steps, **kw)
        runs.append(row)
        ctx.say(f"end to end {name}: {row['images_per_s'] or float('nan'):,.0f} images/s ({row['steps']} steps, "
                f"batch {batch})")
        return row

    first = run(synthetic, "imagenet-like")
    measured = first["images_per_s"]
    try:
        cifar = cifar_splits(ctx)
        notes.update(cifar_cache_s=round(cifar["cache_s"], 2), cifar_resize_s=round(cifar["full_resize_s"], 2),
                     cifar_source=cifar["where"])
        label = f"cifar10-{cifar['full'].crop}"
        if time.perf_counter() + 2 * plan.e2e_seconds < until:
            run(cifar["full"], label, rate=measured)
        else:
            skipped.append(f"{label}: time budget")
    except (FileNotFoundError, ValueError) as error:
        skipped.append(f"cifar10: {error}")
    if plan.e2e_compile and time.perf_counter() + 90 + plan.e2e_seconds < until:
        run(synthetic, "imagenet-like-compiled", compile=True, rate=measured)
    elif plan.e2e_compile:
        skipped.append("imagenet-like-compiled: time budget")
    if time.perf_counter() + plan.e2e_seconds / 2 + 5 < until:
        # for comparison, the host input path (data_on_device=False: crops cut on the CPU, floats sent each step)
        # for a few steps, from a share of the set copied to host memory
        steps = max(plan.min_steps // 4, 4)
        n = min(len(synthetic.train), batch * (steps + 2))
        host = replace(synthetic, train=ImageArrays(synthetic.train.images[:n].cpu(), synthetic.train.labels[:n]),
                       val=ImageArrays(synthetic.val.images.cpu(), synthetic.val.labels))
        run(host, "imagenet-like-host-path", steps=steps, data_on_device=False)
        del host
    else:
        skipped.append("imagenet-like-host-path: time budget")
    del synthetic
    if device.type == "cuda":
        torch.cuda.empty_cache()
    resident = [r for r in runs if r["data_on_device"] and r["images_per_s"]]
    best = max(resident, key=lambda r: r["images_per_s"], default=None)
    return {"runs": runs, "skipped": skipped, "best": best, "batch_size": batch,
            "compute_only_images_per_s": compute_rate, **notes}


def step_scaled(ctx: "Check", until: float) -> dict:
    """(c) the 32 px network (the ablations' CPU track) on CIFAR-10 at the recipe's batch: images/s on the card,
    and what the CPU's ablation studies cost there."""
    plan = ctx.plan
    cifar = cifar_splits(ctx)["scaled"]
    batch = plan.scaled_batch
    seconds = max(1.0, min(plan.scaled_seconds, until - time.perf_counter() - 5))
    if plan.dry:
        seconds = 0.0  # the fewest steps
    probe = timed_train(ctx, cifar, "cifar10-scaled-probe", model_scale="scaled", batch=batch,
                        steps=plan.min_steps)
    steps = steps_for(seconds, probe["images_per_s"], batch, plan, len(cifar.train) // batch - 1)
    row = timed_train(ctx, cifar, "cifar10-scaled", model_scale="scaled", batch=batch, steps=steps)
    rate = row["images_per_s"]
    ctx.say(f"scaled network on CIFAR-10: {rate or float('nan'):,.0f} images/s (batch {batch})")
    cpu_images = CPU_STUDY_HOURS * 3600 * CPU_ABLATION_IMAGES_PER_S
    return {"run": row, "images_per_s": rate, "cpu_images_per_s": CPU_ABLATION_IMAGES_PER_S,
            "speedup_vs_cpu": rate / CPU_ABLATION_IMAGES_PER_S if rate else None,
            "cpu_study_hours": CPU_STUDY_HOURS, "cpu_study_training_images": cpu_images,
            "cpu_study_minutes_on_card": cpu_images / rate / 60 if rate else None,
            "quick_table_training_images": QUICK_TABLE_IMAGES,
            "quick_table_minutes_on_card": QUICK_TABLE_IMAGES / rate / 60 if rate else None,
            "assumption": "training steps only, one run at a time at batch 128 (validation, 10-crop evaluation "
                          "and start-up not counted); CPU rate ≈1,300 images/s from docs/ablations.md"}


def step_two_tower(ctx: "Check", until: float) -> dict:
    """(d) the full-size two-tower network on CIFAR-10 at 224 for the time left: conv1 (Fig. 3), specialisation."""
    from ..figures import plot_conv1_filters
    from ..towers import SpecialisationTracker, tower_specialisation

    plan = ctx.plan
    cifar = cifar_splits(ctx)["full"]
    batch = plan.towers_batch
    e2e = ctx.report["steps"].get("end_to_end", {})
    rates = [r["images_per_s"] for r in e2e.get("runs", []) if r.get("data") == "cifar10" and r["images_per_s"]]
    rate = rates[0] if rates else (e2e.get("best") or {}).get("images_per_s")
    reserve = 20  # the final 10-crop evaluation, the figure, writing
    seconds = until - time.perf_counter() - reserve
    if seconds < 30:
        raise TimeoutError(f"only {seconds:.0f} s left for training")
    steps_per_epoch = len(cifar.train) // batch
    # 20 % for start-up and the per-epoch validations; a dry run (no clock): two chunks of the fewest steps
    planned = 3 * plan.min_steps if plan.dry else steps_for(seconds * 0.8, rate, batch, plan)
    epochs = max(1, round(planned / steps_per_epoch))  # the linear schedule decays over these epochs (§5: plateaus)
    planned = min(planned, epochs * steps_per_epoch)
    tracker = SpecialisationTracker(n_permutations=2000)
    name, t0 = "cifar10-224-two-tower", time.perf_counter()
    recipe = dict(model_scale=plan.scale, batch=batch, epochs=epochs, callback=tracker, keep=True,
                  schedule="linear", warmup_epochs=min(0.5, epochs / 4), lr=0.04)
    # two calls of one run (max_steps is a budget; the second call continues the first exactly): the first
    # measures the real pace, the second takes the steps that the time left allows
    first = max(plan.min_steps, planned // 3)
    row = timed_train(ctx, cifar, name, steps=first, **recipe)
    row.pop("_result")
    per_step = (time.perf_counter() - t0) / max(row["steps"], 1)
    left = until - time.perf_counter() - reserve
    more = plan.min_steps if plan.dry else max(0, int(left / per_step))
    total = min(epochs * steps_per_epoch, row["steps"] + more)
    row = timed_train(ctx, cifar, name, steps=max(total, row["steps"]), ten_crop=True, **recipe)
    result = row.pop("_result")
    shutil.rmtree(ctx.work / "runs" / name, ignore_errors=True)
    spec = tower_specialisation(result.model, n_permutations=10_000)
    fig = plot_conv1_filters(result.model, title=f"conv1 after {row['steps']} steps of CIFAR-10 at "
                                                 f"{cifar.crop} px on {ctx.card}")
    figure = ctx.out / f"gpu_check_{ctx.slug}_conv1.png"
    fig.savefig(figure, dpi=110)
    ctx.say(f"two towers: {row['steps']} steps in {time.perf_counter() - t0:.0f} s; {spec}")
    m = result.metrics
    return {"run": row, "epochs": m.get("epochs"), "val_top1_error": m.get("val_top1_error"),
            "val_top5_error": m.get("val_top5_error"), "val_top1_error_10crop": m.get("val_top1_error_10crop"),
            "specialisation": spec.as_row(), "specialisation_text": str(spec), "per_epoch": tracker.rows,
            "figure": figure.name}


STEP_FUNCTIONS = {"bench": step_bench, "end_to_end": step_end_to_end, "scaled": step_scaled,
                  "two_tower": step_two_tower}
