"""Running the check: the steps in order within the time budget, each guarded, the report rewritten after each."""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path

import torch

from .context import Check
from .plan import DEFAULT_BUDGET_S, STEPS, Plan, peaks
from .steps import STEP_FUNCTIONS




def run_check(*, dry_run: bool = False, out: str | Path | None = None, work: str | Path | None = None,
              budget_s: float | None = None, cifar: str | None = None, device: str = "cuda",
              quiet: bool = False) -> dict:
    """Run the check (see the module docstring); returns the report, also written to ``out``."""
    from .. import files

    plan = Plan.for_dry_run() if dry_run else Plan.for_gpu(device)
    if not dry_run and not torch.device(device).type == "cuda":
        raise ValueError("the check is for a GPU (device cuda); use --dry-run to try it on a CPU")
    if not dry_run and not torch.cuda.is_available():
        raise RuntimeError("no CUDA device here; use --dry-run to try the check on a CPU")
    root = files.project_root()
    out = Path(out) if out else (root / "runs" / "gpu_check_dry" if dry_run else root / "results")
    out.mkdir(parents=True, exist_ok=True)
    scratch = None
    if work is None:  # run folders (checkpoints every epoch: memory is faster than disk) and, dry, the cache
        shm = Path("/dev/shm")
        scratch = Path(tempfile.mkdtemp(prefix="alexnet-gpu-check-",
                                        dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None))
        work = scratch
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    ctx = Check(plan, out, work, budget_s or (120.0 if dry_run else DEFAULT_BUDGET_S), cifar, quiet)
    ctx.cache = work / "cache" if dry_run else root / ".gpu" / "cache"  # CIFAR-10 decoded once at 32 px
    cuda = torch.version.cuda if ctx.device.type == "cuda" else None
    ctx.report = {"card": ctx.card, "card_slug": ctx.slug, "device": str(ctx.device), "dry_run": dry_run,
                  "date": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__, "cuda": cuda,
                  "budget_s": ctx.budget_s, "plan": asdict(plan), "peaks": {}, "steps": {}, "errors": []}
    previous = signal.getsignal(signal.SIGTERM)
    threads = torch.get_num_threads()
    if dry_run:
        torch.set_num_threads(1)  # toy sizes: one thread does them fastest, and leaves a shared CI machine alone

    def stop(signum, frame):  # a `timeout` that runs out: record what was done
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread
        previous = None
    ctx.say(f"{ctx.card}: {'dry run, CPU, toy sizes' if dry_run else 'GPU check'}; budget {ctx.budget_s:.0f} s; "
            f"writing {ctx.json_path}")
    try:
        ctx.peaks = peaks(ctx.device, plan)
        ctx.report["peaks"] = ctx.peaks
        for name in STEPS:
            entry = ctx.report["steps"][name] = {"status": "running"}
            t0 = time.perf_counter()
            try:
                entry.update(STEP_FUNCTIONS[name](ctx, ctx.until(name)))
                entry["status"] = "ok"
            except Exception as error:  # noqa: BLE001 -- recorded; the next step still runs
                entry.update(status="failed", error=f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
                             if str(error) else type(error).__name__,
                             traceback=traceback.format_exc(limit=6)[-3000:])
                ctx.report["errors"].append(f"{name}: {entry['error']}")
                ctx.say(f"{name} failed: {entry['error']}")
            finally:
                entry["seconds"] = round(time.perf_counter() - t0, 2)
                if ctx.device.type == "cuda":
                    torch.cuda.empty_cache()
                ctx.write()
    except KeyboardInterrupt as stopped:
        ctx.report["errors"].append(f"interrupted: {stopped}")
        for entry in ctx.report["steps"].values():
            if entry.get("status") == "running":
                entry["status"] = "interrupted"
        ctx.write()
        raise
    finally:
        torch.set_num_threads(threads)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        ctx.cifar = None
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    ctx.say(f"done in {ctx.report['wall_s']:.0f} s: {ctx.json_path}, {ctx.md_path}")
    return ctx.report
