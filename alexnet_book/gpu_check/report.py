"""The report's conclusions: 90 ImageNet epochs projected from the measured rates against the targets, and the
Markdown section for docs/benchmarks.md."""
from __future__ import annotations

import math

from .plan import (CPU_ABLATION_IMAGES_PER_S, CPU_STUDY_HOURS, EPOCHS, IMAGENET_TRAIN_IMAGES,
                   QUICK_TABLE_IMAGES, STEPS, TARGETS, TITLES)


# ---------------------------------------------------------------------------------------------------------------
# Projections and targets


def hours_for_epochs(images_per_s: float | None, cards: int = 1, epochs: int = EPOCHS) -> float | None:
    """Hours for ``epochs`` passes over ILSVRC-2012's training set at ``images_per_s`` per card (linear in cards)."""
    if not images_per_s:
        return None
    return epochs * IMAGENET_TRAIN_IMAGES / (images_per_s * cards) / 3600


def projections(report: dict) -> dict:
    """90 ImageNet epochs from the measured rates, on one card and on eight, and the issue's targets."""
    steps = report["steps"]
    bench = steps.get("bench", {})
    e2e = steps.get("end_to_end", {})
    compute = (bench.get("best") or {}).get("images_per_s")
    end_to_end = (e2e.get("best") or {}).get("images_per_s")
    mfu = (bench.get("best_bf16") or {}).get("mfu")
    rows = []
    for label, rate in (("compute only (best training step, random batch)", compute),
                        ("end to end (train(), device-resident cache)", end_to_end)):
        rows.append({"basis": label, "images_per_s": rate, "hours_one_card": hours_for_epochs(rate),
                     "hours_eight_cards": hours_for_epochs(rate, 8)})
    hours = hours_for_epochs(end_to_end)
    dry = report.get("dry_run", False)

    def verdict(value, ok):
        return None if dry or value is None else bool(ok(value))

    targets = [
        {"target": "training step MFU, bf16, paper network", "goal": f"≥ {TARGETS['mfu_bf16']:.0%}",
         "measured": mfu, "met": verdict(mfu, lambda v: v >= TARGETS["mfu_bf16"])},
        {"target": "end to end images/s at 224 px from the device-resident cache",
         "goal": f"≥ {TARGETS['end_to_end_images_per_s']:,}", "measured": end_to_end,
         "met": verdict(end_to_end, lambda v: v >= TARGETS["end_to_end_images_per_s"])},
        {"target": f"{EPOCHS} ImageNet epochs on one card (end to end)",
         "goal": f"≤ {TARGETS['hours_90_epochs_one_card']:g} h", "measured": hours,
         "met": verdict(hours, lambda v: v <= TARGETS["hours_90_epochs_one_card"])},
    ]
    return {"epochs": EPOCHS, "imagenet_train_images": IMAGENET_TRAIN_IMAGES, "rows": rows, "targets": targets,
            "needed_images_per_s_for_2h": EPOCHS * IMAGENET_TRAIN_IMAGES / (2 * 3600),
            "assumptions": [
                "eight cards: eight times one card's rate (linear scaling assumed, not measured; gradient "
                "all-reduce of 61M parameters per step not counted)",
                "the end-to-end rate was measured on sets held whole on the card; ImageNet's 256 px cache "
                "(1.28M × 196,608 bytes = 252 GB) does not fit one card, so one card would use the prefetch path "
                "(host memory, next batch copied in the background) -- an 8-card run could hold 1/8 each (31 GB), "
                "which device_data.py does not do yet (each process holds the whole set)",
                "validation and checkpoints not counted"]}


# ---------------------------------------------------------------------------------------------------------------
# The Markdown section


def _n(value, fmt="{:,.0f}", missing="–"):
    return missing if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


def markdown(report: dict) -> str:
    steps = report["steps"]
    head = (f"## GPU check: {report['card']} ({report['date']}, torch {report['torch']}"
            f"{', CUDA ' + report['cuda'] if report.get('cuda') else ''})")
    lines = [head, ""]
    if report["dry_run"]:
        lines += ["**Dry run on a CPU at toy sizes: the plumbing, not measurements.**", ""]
    budget = "no time budget (dry run)" if report["dry_run"] else f"a {report['budget_s']:.0f} s budget"
    lines += [f"`bash scripts/gpu_check.sh` (`alexnet-book gpu-check`), {report['wall_s']:.0f} s of {budget}. "
              "Peak TFLOP/s for MFU: "
              + ", ".join(f"{k} {v['tflops']:,.4g} ({v['source']})" for k, v in report["peaks"].items()) + ".", ""]
    for name in STEPS:
        s = steps.get(name, {"status": "not run"})
        lines += [f"### {TITLES[name]}", ""]
        if s.get("status") != "ok":
            lines += [f"Status: **{s.get('status')}**" + (f" -- `{s['error']}`" if s.get("error") else ""), ""]
        if name == "bench" and s.get("results"):
            lines += ["| network | batch | precision | channels_last | compiled | images/s | TFLOP/s | MFU | "
                      "peak GiB |", "|---|---|---|---|---|---|---|---|---|"]
            for r in s["results"]:
                lines.append(f"| {r['model']} | {r['batch_size']} | {r['precision']} | {r['channels_last']} | "
                             f"{r['compiled']} | {_n(r['images_per_s'])} | {_n(r['tflops'], '{:.1f}')} | "
                             f"{_n(r['mfu'], '{:.1%}')} | {_n(r['peak_memory_gb'], '{:.1f}')} |")
            lines.append("")
            if s.get("paper_vs_torchvision_per_mac") is not None:
                lines += [f"Paper network vs torchvision's per MAC at the fastest paper setting: "
                          f"{s['paper_vs_torchvision_per_mac']:.3f}.", ""]
        if name == "end_to_end" and s.get("runs"):
            lines += ["| data | images | batch | compiled | data on device | steps | images/s |",
                      "|---|---|---|---|---|---|---|"]
            for r in s["runs"]:
                lines.append(f"| {r['name']} | {r['train_images']:,} | {r['batch_size']} | {r['compiled']} | "
                             f"{r['data_on_device']} | {r['steps']} | {_n(r['images_per_s'])} |")
            lines += ["", "Steady images/s: median over the metrics log's windows after the first (the loss is "
                      "read every step, as in any run). Sources: "
                      + "; ".join(sorted({f"{r['data']}: {r['source']}" for r in s["runs"]})) + ".", ""]
        if name == "scaled" and s.get("images_per_s"):
            lines += [f"{_n(s['images_per_s'])} images/s at batch {s['run']['batch_size']} "
                      f"({_n(s['speedup_vs_cpu'], '{:.0f}')}× the CPU's ≈{CPU_ABLATION_IMAGES_PER_S:,}). "
                      f"A {CPU_STUDY_HOURS:g}-hour CPU ablation study ({s['cpu_study_training_images']:,.0f} training "
                      f"images) takes {_n(s['cpu_study_minutes_on_card'], '{:.1f}')} min of training on this card; "
                      f"the quick table ({QUICK_TABLE_IMAGES:,} images, 21.6 min on the CPU) "
                      f"{_n(s['quick_table_minutes_on_card'], '{:.2f}')} min. Assumption: {s['assumption']}.", ""]
        if name == "two_tower" and s.get("run"):
            r = s["run"]
            lines += [f"{r['steps']} steps ({_n(s['epochs'], '{:g}')} epochs) at batch {r['batch_size']}, "
                      f"{_n(r['images_per_s'])} images/s, {r['wall_s']:.0f} s: top-1 validation error "
                      f"{_n(s['val_top1_error'], '{:.1%}')} ({_n(s['val_top1_error_10crop'], '{:.1%}')} with 10 "
                      f"crops). Specialisation (§6.1): {s['specialisation_text']}.", "",
                      f"![conv1 kernels after training]({s['figure']})", ""]
        for line in s.get("skipped", []):
            lines.append(f"- skipped: {line}")
        if s.get("skipped"):
            lines.append("")
    p = report.get("projections")
    if p and "rows" in p:
        lines += [f"### Projections: {EPOCHS} epochs of ImageNet ({IMAGENET_TRAIN_IMAGES:,} images)", "",
                  "| basis | images/s per card | one card | eight cards |", "|---|---|---|---|"]
        for r in p["rows"]:
            lines.append(f"| {r['basis']} | {_n(r['images_per_s'])} | {_n(r['hours_one_card'], '{:.2f} h')} | "
                         f"{_n(r['hours_eight_cards'], '{:.2f} h')} |")
        lines += ["", "| target | goal | measured | met |", "|---|---|---|---|"]
        for t in p["targets"]:
            value = t["measured"]
            shown = _n(value, "{:.1%}") if "MFU" in t["target"] else (
                _n(value, "{:.2f} h") if "epochs" in t["target"] else _n(value))
            met = {True: "yes", False: "**no**", None: "–"}[t["met"]]
            lines.append(f"| {t['target']} | {t['goal']} | {shown} | {met} |")
        lines += ["", "Assumptions: " + "; ".join(p["assumptions"]) + ".", ""]
    return "\n".join(lines)
